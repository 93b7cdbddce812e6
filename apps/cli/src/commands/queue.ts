import { resolve } from "node:path";
import { loadManifest } from "@hailuo/manifest";
import { enqueueRun, openRedis, QUEUES, startWorker } from "@hailuo/queue";
import { Queue } from "bullmq";
import { numberOption, parseVars } from "../options.js";
import { backendFromEnv, connectFal } from "../fal-connection.js";
import { displayPath } from "../display-path.js";
import { defaultRunDir } from "./run.js";

/** `hailuo run <manifest> --redis URL`: enqueue the run as a flow for any number of workers. */
export async function enqueueCommand(manifestPath: string, opts: { redis: string; prefix: string; out?: string; concurrency: string; budget?: string; wait?: boolean; var: string[] }): Promise<number> {
  const manifest = await loadManifest(manifestPath, { vars: parseVars(opts.var) });
  const runDir = resolve(opts.out ?? defaultRunDir(manifest));
  const budgetUsd = numberOption("budget", opts.budget, { integer: false });
  const run = await enqueueRun({ manifest, runDir, redisUrl: opts.redis, prefix: opts.prefix, falConcurrency: numberOption("concurrency", opts.concurrency, { min: 1 }), budgetUsd, backend: backendFromEnv() });
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
    backend: conn.backend,
    concurrency: numberOption("concurrency", opts.concurrency, { min: 1 }),
    lockDurationMs: numberOption("lock-ms", opts.lockMs, { min: 1000 }),
    retries: numberOption("retries", opts.retries),
    log: say,
  });
  say(`worker ${process.pid} ready on ${opts.redis} (prefix ${opts.prefix}); Ctrl-C stops it and leaves its jobs resumable`);
  await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
  await worker.close();
  await conn.close();
  return 0;
}
