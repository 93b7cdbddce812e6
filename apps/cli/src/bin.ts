#!/usr/bin/env node
import { Command, CommanderError, Option } from "commander";
import { EXIT, exitCodeFor, reportError } from "./exit-codes.js";

const collect = (value: string, previous: string[]) => [...previous, value];

/**
 * Runs one command with a signal that aborts on the first SIGINT/SIGTERM; a second one exits at once.
 * Commands are imported lazily so `hailuo --help` stays instant.
 */
async function run(debug: boolean, fn: (signal: AbortSignal) => Promise<number>): Promise<void> {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(EXIT.interrupted);
    process.stderr.write(`\nhailuo: ${sig} received, stopping (press Ctrl-C again to exit at once)\n`);
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    process.exitCode = await fn(controller.signal);
  } catch (error) {
    reportError(error, debug);
    process.exitCode = exitCodeFor(error);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

const program = new Command("hailuo")
  .description("Prompt manifests in, finished video out (MiniMax Hailuo 02 on fal.ai)")
  .option("--debug", "print stack traces")
  .showHelpAfterError()
  .exitOverride();
const debug = () => Boolean(program.opts().debug);

program
  .command("generate")
  .description("generate one clip from a prompt")
  .argument("<prompt>", "what the clip shows")
  .addOption(new Option("--duration <seconds>", "clip length").choices(["6", "10"]).default("6"))
  .option("--no-optimizer", "turn fal's prompt optimizer off")
  .option("--out <file>", "where to save the clip")
  .action((prompt: string, opts) => run(debug(), async (signal) => (await import("./commands/generate.js")).generateCommand(prompt, opts, signal)));

program
  .command("emulator")
  .description("run the fal-compatible emulator in the foreground")
  .option("--port <n>", "port", "8787")
  .option("--host <addr>", "address to bind", "127.0.0.1")
  .option("--latency-ms <n>", "least time a request spends IN_PROGRESS")
  .option("--queue-latency-ms <n>", "least time a request spends IN_QUEUE")
  .option("--slots <n>", "requests IN_PROGRESS at once", "2")
  .option("--seed <n>", "seed of the fault generator", "1")
  .option("--fault <route:kind:amount>", "inject a fault, e.g. submit:503:0.1 or submit:drop:#1 (repeatable)", collect, [])
  .option("--policy-word <word>", "prompts containing it fail content policy (repeatable)", collect, [])
  .option("--generation-error-rate <p>", "share of generations that end COMPLETED with an error")
  .option("--api-key <key>", "accept only this key")
  .option("--render <mode>", "animatic (a card per input) or shared (one card per duration)", "animatic")
  .action((opts) => run(debug(), async (signal) => (await import("./commands/emulator.js")).emulatorCommand(opts, signal)));

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
