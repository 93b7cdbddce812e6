import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  cancelRun,
  createRunStores,
  enqueueRun,
  listQueue,
  openRedis,
  QUEUES,
  removeSchedule,
  runAddress,
  startWorker,
} from "@hailuo/queue";
import { createHailuoClient } from "@hailuo/core";
import { PriceUnknownError, readRunReport } from "@hailuo/runner";
import { Queue } from "bullmq";
import { isBucketUrl, parseStoreUrl } from "@hailuo/store";
import { numberOption, parseVars } from "../options.js";
import { backendFromEnv, connectFal, describePrice, priceFor } from "../fal-connection.js";
import { displayPath } from "../display-path.js";
import { emitJson } from "../events.js";
import { UsageError } from "../exit-codes.js";
import { loadManifestTelling } from "../load-input.js";
import { chooseView, createProgressView } from "../progress-view.js";
import { defaultRunDir } from "./run.js";
import { untilAborted } from "@hailuo/shared";

/** `hailuo run <manifest> --redis URL`: enqueue the run as a flow for any number of workers. */
export async function enqueueCommand(
  manifestPath: string,
  opts: {
    redis: string;
    prefix: string;
    out?: string;
    /** `s3://bucket/prefix`: the run's files go to the bucket, its records to Redis. */
    store?: string;
    concurrency: string;
    budget?: string;
    price?: string;
    assumeListPrice?: boolean;
    /** Recorded in run.json: every worker retries this run's generations this often. */
    retries?: string;
    wait?: boolean;
    var: string[];
    json?: boolean;
  },
  signal: AbortSignal,
): Promise<number> {
  if (opts.store !== undefined) {
    if (!isBucketUrl(opts.store))
      throw new UsageError(
        `--store takes s3://BUCKET/PREFIX (got ${opts.store}); for a folder use --out DIR`,
      );
    parseStoreUrl(opts.store);
    if (!opts.redis)
      throw new UsageError(
        `--store ${opts.store} keeps the run's records in Redis: add --redis URL`,
      );
    if (opts.out) throw new UsageError("--out and --store name two places for one run; give one");
  }
  const manifest = await loadManifestTelling(manifestPath, {
    vars: parseVars(opts.var),
    json: opts.json,
  });
  const runDir = opts.store ? runAddress(opts.store) : resolve(opts.out ?? defaultRunDir(manifest));
  const budgetUsd = numberOption("budget", opts.budget, { integer: false });
  // Workers reserve against the budget at the price recorded now: one fal would not confirm is
  // refused for a budget, as a local run refuses it.
  const given = numberOption("price", opts.price, { integer: false, min: 0.000001 });
  // Workers may hold a key this machine lacks: with no backend named here, the list price is a guess.
  const quoted = await priceFor(undefined, given);
  const price =
    given === undefined && !backendFromEnv()
      ? {
          ...quoted,
          verified: false,
          reason:
            "no FAL_KEY or FAL_EMULATOR_URL where the run is enqueued; workers may bill at their account's price",
        }
      : quoted;
  if (opts.json) emitJson({ type: "price", ...price });
  else process.stderr.write(`${describePrice(price)}\n`);
  if (budgetUsd !== undefined && !price.verified && !opts.assumeListPrice) {
    throw new PriceUnknownError(budgetUsd, price, "enqueued");
  }
  const run = await enqueueRun({
    manifest,
    runDir,
    redisUrl: opts.redis,
    prefix: opts.prefix,
    falConcurrency: numberOption("concurrency", opts.concurrency, { min: 1 }),
    budgetUsd,
    backend: backendFromEnv(),
    usdPerSecond: price.usdPerSecond,
    retries: numberOption("retries", opts.retries),
    // Image files go up now, to the backend the workers use (a built-in emulator would die with
    // this process, so there is none without FAL_KEY or FAL_EMULATOR_URL).
    client: backendFromEnv() ? createHailuoClient() : undefined,
  });
  const prefixFlag = opts.prefix !== "hailuo" ? ` --prefix ${opts.prefix}` : "";
  if (opts.json)
    emitJson({
      type: "log",
      message: `enqueued run ${run.runId}: ${run.childJobIds.length} generation(s) → ${displayPath(runDir)}`,
    });
  else {
    process.stderr.write(
      `enqueued run ${run.runId}: ${run.childJobIds.length} generation(s) + assemble → ${displayPath(runDir)}\n`,
    );
    process.stderr.write(
      `start workers with: pnpm hailuo worker --redis ${opts.redis}${prefixFlag}\n`,
    );
  }
  return opts.wait ? waitForRun(run.parentJobId, runDir, opts, signal) : 0;
}

/**
 * Waits for a distributed run to be assembled, showing its progress from the run folder's
 * journal (shared with the workers); one Ctrl-C stops waiting, never the run.
 */
async function waitForRun(
  parentJobId: string,
  runDir: string,
  opts: { redis: string; prefix: string; json?: boolean },
  signal: AbortSignal,
): Promise<number> {
  const view = await createProgressView(chooseView(Boolean(opts.json)));
  const connection = await openRedis(opts.redis);
  const stores = createRunStores({ redis: connection, keyPrefix: opts.prefix });
  const store = stores.of(runDir);
  const assemble = new Queue(QUEUES.assemble, { connection, prefix: opts.prefix });
  let last = "";
  try {
    while (!signal.aborted) {
      const job = await assemble.getJob(parentJobId);
      const state = job ? await job.getState() : "unknown";
      if (state === "completed") {
        view.line(`assembled: see ${displayPath(runDir)}/index.html`);
        return 0;
      }
      if (state === "failed") {
        view.line(`assemble failed: ${job?.failedReason}`);
        return 1;
      }
      const t = (await readRunReport(store).catch(() => undefined))?.totals;
      const line = t
        ? `${t.done + t.cached} done, ${t.failed} failed, ${t.pending + t.interrupted} to go; $${t.billedUsd.toFixed(2)} billed (waiting for workers; Ctrl-C stops waiting, not the run)`
        : "waiting for workers";
      if (line !== last) view.line((last = line));
      await sleep(1000, undefined, { signal }).catch(() => {});
    }
    view.line(
      `stopped waiting; the run goes on in the workers. See it with: pnpm hailuo status ${displayPath(runDir)}`,
    );
    return 130;
  } finally {
    view.stop();
    await assemble.close();
    await stores.close();
    connection.disconnect();
  }
}

/** `hailuo worker --redis URL`: process generate and assemble jobs until stopped. */
export async function workerCommand(
  opts: { redis: string; prefix: string; concurrency: string; lockMs: string; retries: string },
  signal: AbortSignal,
): Promise<number> {
  const say = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  const options = {
    concurrency: numberOption("concurrency", opts.concurrency, { min: 1 }),
    lockDurationMs: numberOption("lock-ms", opts.lockMs, { min: 1000 }),
    retries: numberOption("retries", opts.retries),
  };
  // Redis first: a worker that cannot reach it says so and exits, before starting anything else.
  (await openRedis(opts.redis)).disconnect();
  const conn = await connectFal({ say });
  try {
    const worker = await startWorker({
      redisUrl: opts.redis,
      prefix: opts.prefix,
      client: conn.client,
      backend: conn.backend,
      ...options,
      log: say,
    });
    say(
      `worker ${process.pid} ready on ${opts.redis} (prefix ${opts.prefix}); Ctrl-C stops it and leaves its jobs resumable`,
    );
    await untilAborted(signal);
    await worker.close();
    return 0;
  } finally {
    await conn.close();
  }
}

/** `hailuo queue ls --redis URL`: enqueued runs and registered schedules. */
export async function queueListCommand(opts: {
  redis: string;
  prefix: string;
  json?: boolean;
}): Promise<number> {
  const { runs, schedules } = await listQueue({ redisUrl: opts.redis, prefix: opts.prefix });
  if (opts.json) {
    emitJson({ type: "queue", runs, schedules });
    return 0;
  }
  if (!runs.length && !schedules.length) process.stdout.write("nothing queued\n");
  for (const r of runs) {
    const g = r.generations;
    process.stdout.write(
      `run ${r.runId}  ${r.state.padEnd(16)} ${g.finished}/${g.finished + g.remaining} generation(s) finished${g.failed ? `, ${g.failed} failed` : ""}  ${displayPath(r.runDir)}\n`,
    );
  }
  for (const s of schedules)
    process.stdout.write(
      `schedule ${s.job}  "${s.pattern}" ${s.timeZone ?? "UTC"}  next ${s.next ?? "never"}\n`,
    );
  return 0;
}

/** `hailuo queue cancel <run-dir|run-id> --redis URL` (or `--schedule <job>`). */
export async function queueCancelCommand(
  target: string | undefined,
  opts: { redis: string; prefix: string; schedule?: string; json?: boolean },
): Promise<number> {
  const conn = { redisUrl: opts.redis, prefix: opts.prefix };
  if (opts.schedule) {
    const removed = await removeSchedule(conn, opts.schedule);
    process.stderr.write(
      removed
        ? `schedule ${opts.schedule} removed (runs it already enqueued stay)\n`
        : `no schedule named ${opts.schedule}\n`,
    );
    return removed ? 0 : 2;
  }
  if (!target)
    throw new UsageError("queue cancel needs a run folder or run id (or --schedule <job>)");
  const r = await cancelRun(conn, target);
  if (opts.json) emitJson({ type: "cancelled", ...r });
  process.stderr.write(
    `run ${r.runId}: ${r.removed} waiting generation(s) removed` +
      (r.liveUsd > 0
        ? ` ($${r.liveUsd.toFixed(2)} of requests already live on fal are still billed when they finish: \`hailuo resume\` saves their clips)`
        : " (nothing paid for them)") +
      (r.stillRunning
        ? `; ${r.stillRunning} running on workers finish (their requests are live on fal) and the run assembles what it has\n`
        : r.gone
          ? "; the run is out of the queue: `hailuo resume` can carry it on here\n"
          : "\n"),
  );
  return 0;
}
