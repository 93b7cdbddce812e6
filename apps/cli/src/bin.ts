#!/usr/bin/env node
import { Command, CommanderError, Option } from "commander";
import { createRequire } from "node:module";
import { EXIT, exitCodeFor, reportError } from "./exit-codes.js";

const VERSION = (createRequire(import.meta.url)("../package.json") as { version: string }).version;

const collect = (value: string, previous: string[]) => [...previous, value];

/**
 * Runs one command with a signal that aborts on the first SIGINT/SIGTERM; a second one exits at once.
 * Commands are imported lazily so `hailuo --help` stays instant.
 */
async function run(debug: boolean, fn: (signal: AbortSignal) => Promise<number>): Promise<void> {
  const json = process.argv.slice(2).includes("--json");
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      // The journal already says which submits were on the wire: the next resume flags them.
      process.stderr.write(
        `\nhailuo: exiting now; submits still on the wire are flagged as possible double charges in the report\n`,
      );
      process.exit(EXIT.interrupted);
    }
    process.stderr.write(
      `\nhailuo: ${sig} received, stopping: no new submits; submits already sent get up to 30 s so their request ids are kept (press Ctrl-C again to exit at once)\n`,
    );
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    process.exitCode = await fn(controller.signal);
  } catch (error) {
    reportError(error, debug, json);
    process.exitCode = exitCodeFor(error);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

// A closed pipe (`hailuo status run | head -1`) is the reader saying "enough", not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
}
// `pnpm hailuo …` runs at the repository root; paths on its command line are the user's.
if (process.env.INIT_CWD && process.env.npm_lifecycle_event === "hailuo")
  process.chdir(process.env.INIT_CWD);

const program = new Command("hailuo")
  .description("Prompt manifests in, finished video out (MiniMax Hailuo 02 on fal.ai)")
  .version(VERSION, "-V, --version", "print the version")
  .option("--debug", "print stack traces")
  .exitOverride();
const debug = () => Boolean(program.opts().debug);

program
  .command("generate")
  .description("generate one clip from a prompt")
  .argument("<prompt>", "what the clip shows")
  .addOption(new Option("--duration <seconds>", "clip length").choices(["6", "10"]).default("6"))
  .option("--no-optimizer", "turn fal's prompt optimizer off")
  .option("--out <file>", "where to save the clip")
  .option("-y, --yes", "do not ask before spending")
  .option("--json", "the request id and the saved clip as JSON lines")
  .action((prompt: string, opts) =>
    run(debug(), async (signal) =>
      (await import("./commands/generate.js")).generateCommand(prompt, opts, signal),
    ),
  );

const runOptions = (cmd: Command) =>
  cmd
    .option("--concurrency <n>", "generations in flight at once (fal gives new accounts 2)", "2")
    .option("--retries <n>", "retries per clip after the first attempt", "3")
    .option("--budget <usd>", "refuse to start, and stop submitting, past this many dollars")
    .option(
      "--price <usd-per-s>",
      "your account's price per generated second, when fal's pricing API cannot say it",
    )
    .option(
      "--assume-list-price",
      "budget at the list price when fal cannot confirm the account's price",
    )
    .option(
      "--resend-lost <n>",
      "resends of a clip after submits whose answers were lost and cannot be looked up",
      "1",
    )
    .option(
      "--timeout-min <minutes>",
      "longest wait for one clip (the request stays resumable)",
      "15",
    )
    .option("--no-cache", "generate again even when the run folder has the clip")
    .option("--cancel-on-exit", "on Ctrl-C, cancel requests still waiting in fal's queue")
    .option("--json", "one JSON event per line on stdout")
    .option("--var <name=value>", "template variable (repeatable)", collect, [])
    .option("--assemble", "make the film even if the manifest has no assemble: section")
    .option("--placeholders", "a card in place of each failed scene in the film")
    .option("--no-media", "skip posters, contact sheet, film and index.html")
    .option(
      "--backend-override",
      "carry on a run against this backend although its requests went to another one",
    )
    .option("--take-over", "run locally in a folder a distributed run owns (its workers are gone)")
    .option(
      "-y, --yes",
      "do not ask before spending (a billed run on a terminal asks above --confirm-above)",
    )
    .option(
      "--confirm-above <usd>",
      "ask before a billed run that may cost more than this (default $1, or HAILUO_CONFIRM_ABOVE)",
    );

runOptions(
  program
    .command("run")
    .description("generate every scene of a manifest (YAML, CSV or JSONL) into a run folder")
    .argument("<manifest>", "the manifest file")
    .option("--out <dir>", "run folder (default runs/<manifest name>)")
    .option("--dry-run", "show the plan and cost, submit nothing")
    .option(
      "--redis <url>",
      "enqueue the run for `hailuo worker` processes instead of running it here",
    )
    .option("--prefix <prefix>", "queue key prefix (with --redis)", "hailuo")
    .option(
      "--store <url>",
      "with --redis: keep the run in a bucket (s3://BUCKET/PREFIX; AWS_* environment) instead of a folder",
    )
    .option(
      "--wait",
      "with --redis: show progress until the run is assembled (Ctrl-C stops waiting, not the run)",
    ),
).action((file: string, opts) =>
  run(debug(), async (signal) =>
    opts.redis || opts.store
      ? (await import("./commands/queue.js")).enqueueCommand(file, opts, signal)
      : (await import("./commands/run.js")).runCommand(file, opts, signal),
  ),
);

program
  .command("worker")
  .description("process queued runs from Redis (start as many as you like, on any machine)")
  .requiredOption("--redis <url>", "Redis URL, e.g. redis://127.0.0.1:6379")
  .option("--prefix <prefix>", "queue key prefix", "hailuo")
  .option(
    "--concurrency <n>",
    "generations this worker runs at once (the run's account limit still applies)",
    "2",
  )
  .option(
    "--lock-ms <n>",
    "job lock; a killed worker's jobs are taken over after this long",
    "30000",
  )
  .option("--retries <n>", "retries per clip after the first attempt", "3")
  .action((opts) =>
    run(debug(), async (signal) =>
      (await import("./commands/queue.js")).workerCommand(opts, signal),
    ),
  );

const queue = program
  .command("queue")
  .description("runs and schedules in Redis (distributed mode)");
queue
  .command("ls")
  .description("enqueued runs with their progress, and registered schedules")
  .requiredOption("--redis <url>", "Redis URL")
  .option("--prefix <prefix>", "queue key prefix", "hailuo")
  .option("--json", "as one JSON object")
  .action((opts) =>
    run(debug(), async () => (await import("./commands/queue.js")).queueListCommand(opts)),
  );
queue
  .command("cancel")
  .description(
    "remove a run's waiting generations and its assemble job (running ones finish), or a schedule",
  )
  .argument("[run]", "the run folder or run id")
  .requiredOption("--redis <url>", "Redis URL")
  .option("--prefix <prefix>", "queue key prefix", "hailuo")
  .option("--schedule <job>", "remove this job's schedule instead")
  .option("--json", "the result as one JSON object")
  .action((target: string | undefined, opts) =>
    run(debug(), async () =>
      (await import("./commands/queue.js")).queueCancelCommand(target, opts),
    ),
  );

runOptions(
  program
    .command("resume")
    .description("continue a run where it stopped (re-attaches, never pays twice)")
    .argument("<run>", "a run folder, or a bucket run's s3://BUCKET/PREFIX")
    .option("--redis <url>", "where a bucket run's records live (default: $REDIS_URL)")
    .option("--prefix <prefix>", "queue key prefix (with --redis)", "hailuo"),
).action((dir: string, opts) =>
  run(debug(), async (signal) =>
    (await import("./commands/run.js")).resumeCommand(dir, opts, signal),
  ),
);

program
  .command("pick")
  .description("choose the take a scene's film uses (picks.json); then `hailuo assemble`")
  .argument("<run>", "a run folder, or a bucket run's s3://BUCKET/PREFIX")
  .option("--redis <url>", "where a bucket run's records live (default: $REDIS_URL)")
  .option("--prefix <prefix>", "queue key prefix (with --redis)", "hailuo")
  .argument("<scene>", "scene id")
  .argument("<take>", "take number")
  .option("--json", "the pick as one JSON object")
  .action((dir: string, scene: string, take: string, opts) =>
    run(debug(), async () =>
      (await import("./commands/takes.js")).pickCommand(dir, scene, take, opts),
    ),
  );

runOptions(
  program
    .command("reroll")
    .description(
      "generate more takes of one scene, optionally with an edited prompt (recorded in run.json)",
    )
    .argument("<run>", "a run folder, or a bucket run's s3://BUCKET/PREFIX")
    .argument("<scene>", "scene id")
    .option("--redis <url>", "where a bucket run's records live (default: $REDIS_URL)")
    .option("--prefix <prefix>", "queue key prefix (with --redis)", "hailuo")
    .option("--prompt <text>", "an edited prompt for the new take(s)")
    .option("--takes <n>", "how many new takes", "1"),
).action((dir: string, scene: string, opts) =>
  run(debug(), async (signal) =>
    (await import("./commands/takes.js")).rerollCommand(dir, scene, opts, signal),
  ),
);

program
  .command("review")
  .description("a local page to watch a run live, compare takes, pick, re-roll and assemble")
  .argument("<run>", "a run folder, or a bucket run's s3://BUCKET/PREFIX")
  .option("--redis <url>", "where a bucket run's records live (default: $REDIS_URL)")
  .option("--prefix <prefix>", "queue key prefix (with --redis)", "hailuo")
  .option("--port <n>", "port (default: any free one)")
  .option(
    "--host <addr>",
    "address to bind; anything but loopback lets others on your network spend your money",
    "127.0.0.1",
  )
  .action((dir: string, opts) =>
    run(debug(), async (signal) =>
      (await import("./commands/review.js")).reviewCommand(dir, opts, signal),
    ),
  );

program
  .command("status")
  .description(
    "where a run stands, from its journal and clip files (no network but Redis for a bucket)",
  )
  .argument("<run>", "a run folder, or a bucket run's s3://BUCKET/PREFIX")
  .option("--redis <url>", "where a bucket run's records live (default: $REDIS_URL)")
  .option("--prefix <prefix>", "queue key prefix (with --redis)", "hailuo")
  .option("--json", "the report as JSON")
  .option(
    "--verify",
    "hash every clip against its download (catches bit rot); changed ones are re-downloaded by resume",
  )
  .action((dir: string, opts) =>
    run(debug(), async () => (await import("./commands/inspect.js")).statusCommand(dir, opts)),
  );

program
  .command("estimate")
  .description("what a manifest would cost")
  .argument("<manifest>")
  .option("--var <name=value>", "template variable (repeatable)", collect, [])
  .option("--json", "as JSON")
  .action((file: string, opts) =>
    run(debug(), async () => (await import("./commands/inspect.js")).estimateCommand(file, opts)),
  );

program
  .command("validate")
  .description("check a manifest; every problem with file:line")
  .argument("<manifest>")
  .option("--var <name=value>", "template variable (repeatable)", collect, [])
  .option("--json", "the result as one JSON object")
  .action((file: string, opts) =>
    run(debug(), async () => (await import("./commands/inspect.js")).validateCommand(file, opts)),
  );

program
  .command("assemble")
  .description("(re)make the film from the clips a run has now")
  .argument("<run>", "a run folder, or a bucket run's s3://BUCKET/PREFIX")
  .option("--redis <url>", "where a bucket run's records live (default: $REDIS_URL)")
  .option("--prefix <prefix>", "queue key prefix (with --redis)", "hailuo")
  .option("--transition <name:seconds>", "transition between scenes, e.g. fade:0.5 or cut")
  .option("--audio <file>", "music bed, trimmed or looped to the film")
  .option("--out <file>", "where to write the film (default: the run folder's film.mp4)")
  .option("--placeholders", "a card in place of each failed scene")
  .option(
    "--preset <name>",
    "libx264 preset when the film is re-encoded: ultrafast for a quick draft … veryslow (default veryfast)",
  )
  .option("--json", "progress as JSON lines")
  .action((dir: string, opts) =>
    run(debug(), async (signal) =>
      (await import("./commands/media.js")).assembleCommand(dir, opts, signal),
    ),
  );

program
  .command("thumbs")
  .description("posters and a contact sheet for a run folder or for video files")
  .argument("<targets...>", "a run folder, a bucket run's s3://BUCKET/PREFIX, or video files")
  .option("--redis <url>", "where a bucket run's records live (default: $REDIS_URL)")
  .option("--prefix <prefix>", "queue key prefix (with --redis)", "hailuo")
  .option("--sheet <COLSxROWS>", "contact sheet layout", "4")
  .option("--gif", "also an animated GIF preview per clip")
  .option("--out <file>", "contact sheet file for videos (default ./contact-sheet.jpg)")
  .option("--json", "what was made, as one JSON object")
  .action((targets: string[], opts) =>
    run(debug(), async (signal) =>
      (await import("./commands/media.js")).thumbsCommand(targets, opts, signal),
    ),
  );

program
  .command("report")
  .description("rewrite a run's index.html, posters and contact sheet")
  .argument("<run>", "a run folder, or a bucket run's s3://BUCKET/PREFIX")
  .option("--redis <url>", "where a bucket run's records live (default: $REDIS_URL)")
  .option("--prefix <prefix>", "queue key prefix (with --redis)", "hailuo")
  .option("--json", "progress and results as JSON lines")
  .action((dir: string, opts) =>
    run(debug(), async (signal) =>
      (await import("./commands/media.js")).reportCommand(dir, opts, signal),
    ),
  );

program
  .command("schedule")
  .description("run scheduled jobs (jobs/<name>/job.yaml) on their cron schedules")
  .argument("[jobs-dir]", "folder of jobs", "jobs")
  .option("--once <job>", "run one job now and exit")
  .option(
    "--redis <url>",
    "register the schedules as BullMQ job schedulers for the workers instead",
  )
  .option("--prefix <prefix>", "queue key prefix (with --redis)", "hailuo")
  .action((dir: string, opts) =>
    run(debug(), async (signal) =>
      (await import("./commands/schedule.js")).scheduleCommand(dir, opts, signal),
    ),
  );

program
  .command("jobs")
  .description("scheduled jobs")
  .command("list")
  .description("each job, its next fire time and last result")
  .argument("[jobs-dir]", "folder of jobs", "jobs")
  .option("--json", "as JSON")
  .action((dir: string, opts) =>
    run(debug(), async () => (await import("./commands/schedule.js")).jobsListCommand(dir, opts)),
  );

program
  .command("emulator")
  .description("run the fal-compatible emulator in the foreground")
  .option("--port <n>", "port", "8787")
  .option("--host <addr>", "address to bind", "127.0.0.1")
  .option("--latency-ms <n>", "least time a request spends IN_PROGRESS")
  .option("--queue-latency-ms <n>", "least time a request spends IN_QUEUE")
  .option("--slots <n>", "requests IN_PROGRESS at once", "2")
  .option("--seed <n>", "seed of the fault generator", "1")
  .option(
    "--fault <route:kind:amount>",
    "inject a fault, e.g. submit:503:0.1 or submit:drop:#1 (repeatable)",
    collect,
    [],
  )
  .option(
    "--policy-word <word>",
    "prompts containing it fail content policy (repeatable)",
    collect,
    [],
  )
  .option("--generation-error-rate <p>", "share of generations that end COMPLETED with an error")
  .option("--api-key <key>", "accept only this key")
  .option(
    "--render <mode>",
    "animatic (a card per input) or shared (one card per duration)",
    "animatic",
  )
  .option("--price <usd>", "the account's price per second (pricing API and bill)")
  .option("--platform-api <on|forbidden>", "forbidden: fal's Platform APIs answer 403", "on")
  .option(
    "--cancel-running <signal|immediate>",
    "signal: a cancelled running request may still complete, as on fal",
    "signal",
  )
  .option(
    "--failure-shape <fal|status-error>",
    "fal: failures are COMPLETED without error and fail at the result fetch",
    "fal",
  )
  .option(
    "--public-url <url>",
    "base URL for the URLs it hands out (default: the Host each client used)",
  )
  .action((opts) =>
    run(debug(), async (signal) =>
      (await import("./commands/emulator.js")).emulatorCommand(opts, signal),
    ),
  );

// A usage error is one or two lines that point at the right help, never a screen of it.
const pointToHelp = (cmd: Command, name: string) => {
  cmd.showHelpAfterError(`see \`hailuo ${name}--help\``).exitOverride();
  for (const sub of cmd.commands) pointToHelp(sub, `${name}${sub.name()} `);
};
pointToHelp(program, "");

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    reportError(error, debug());
    process.exitCode = exitCodeFor(error);
  }
}
