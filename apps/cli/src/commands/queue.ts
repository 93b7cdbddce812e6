import { resolve } from "node:path";
import { loadManifest } from "@hailuo/manifest";
import { enqueueRun, openRedis, QUEUES, startWorker } from "@hailuo/queue";
import { Queue } from "bullmq";
import { UsageError } from "../exit-codes.js";
import { connectFal } from "../fal-connection.js";
import { displayPath } from "../display-path.js";
import { defaultRunDir } from "./run.js";

function count(name: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be a whole number ≥ ${min}, got "${value}"`);
  return n;
}

/** `hailuo run <manifest> --redis URL`: enqueue the run as a flow for any number of workers. */
export async function enqueueCommand(manifestPath: string, opts: { redis: string; prefix: string; out?: string; concurrency: string; budget?: string; wait?: boolean; var: string[] }): Promise<number> {
  const vars = Object.fromEntries(opts.var.map((p) => [p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1)]));
  const manifest = await loadManifest(manifestPath, { vars });
  const runDir = resolve(opts.out ?? defaultRunDir(manifest));
  const budgetUsd = opts.budget === undefined ? undefined : Number(opts.budget);
  if (budgetUsd !== undefined && !(budgetUsd >= 0)) throw new UsageError(`--budget must be a number of dollars ≥ 0, got "${opts.budget}"`);
  const run = await enqueueRun({ manifest, runDir, redisUrl: opts.redis, prefix: opts.prefix, falConcurrency: count("concurrency", opts.concurrency), budgetUsd });
  process.stderr.write(`enqueued run ${run.runId}: ${run.childJobIds.length} generation(s) + assemble → ${displayPath(runDir)}\n`);
  process.stderr.write(`start workers with: pnpm hailuo worker --redis ${opts.redis}${opts.prefix !== "hailuo" ? ` --prefix ${opts.prefix}` : ""}\n`);
  if (!opts.wait) return 0;
  const connection = await openRedis(opts.redis);
  const assemble = new Queue(QUEUES.assemble, { connection, prefix: opts.prefix });
  try {
    for (;;) {
      const job = await assemble.getJob(run.parentJobId);
      const state = job ? await job.getState() : "unknown";
      if (state === "completed") {
        process.stderr.write(`run ${run.runId} assembled: see ${displayPath(runDir)}/index.html\n`);
        return 0;
      }
      if (state === "failed") {
        process.stderr.write(`run ${run.runId}: assemble failed: ${job?.failedReason}\n`);
        return 1;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    await assemble.close();
    connection.disconnect();
  }
}

/** `hailuo worker --redis URL`: process generate and assemble jobs until stopped. */
export async function workerCommand(opts: { redis: string; prefix: string; concurrency: string; lockMs: string; retries: string }, signal: AbortSignal): Promise<number> {
  const say = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  const conn = await connectFal({ say });
  const worker = await startWorker({
    redisUrl: opts.redis,
    prefix: opts.prefix,
    client: conn.client,
    concurrency: count("concurrency", opts.concurrency),
    lockDurationMs: count("lock-ms", opts.lockMs, 1000),
    retries: count("retries", opts.retries, 0),
    log: say,
  });
  say(`worker ${process.pid} ready on ${opts.redis} (prefix ${opts.prefix}); Ctrl-C stops it and leaves its jobs resumable`);
  await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
  await worker.close();
  await conn.close();
  return 0;
}
