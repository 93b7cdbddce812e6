import { DelayedError, UnrecoverableError, Worker, type Job } from "bullmq";
import { HAILUO_ENDPOINT, livePrice, type HailuoClient } from "@hailuo/core";
import { createItemWorker, type Backend, type RunEvent } from "@hailuo/runner";
import { runMediaStage } from "@hailuo/publish";
import { appendHistory } from "@hailuo/scheduler";
import { HailuoError } from "@hailuo/shared";
import { RunLockedError } from "@hailuo/store";
import { runIdFor, type AssembleJobData, type GenerateJobData } from "./run-flow.js";
import { closeRunBudget, runBudget } from "./run-budget.js";
import { releaseJobRun, scheduledRun, settleJobRun } from "./job-guard.js";
import { createRunStores, scratchReady } from "./run-stores.js";
import { dropScratchClip, keepOutputs, materializeRun } from "./bucket-run.js";
import { QUEUES, openRedis, type QueueConnection } from "./connection.js";
import { processScheduledFire, type ScheduleJobData } from "./schedules.js";

/** Options of `startWorker`. */
export interface WorkerOptions extends QueueConnection {
  client: HailuoClient;
  /** Where `client` sends requests; a run recorded against another backend is refused. */
  backend?: Backend;
  /** Generate jobs this process runs at once (the queue's global limit still applies). @default 2 */
  concurrency?: number;
  /** How long a job's lock lasts without renewal; a killed worker's jobs are taken over after it. @default 30000 */
  lockDurationMs?: number;
  /** Retries inside a job (same classification as the local runner). @default 3 */
  retries?: number;
  retryBaseDelayMs?: number;
  onEvent?: (event: RunEvent) => void;
  /** One line per job start/finish. */
  log?: (line: string) => void;
}

/** A running worker. */
export interface RunningWorker {
  /** Stops taking jobs, interrupts the ones in flight (they stay resumable) and disconnects. */
  close(): Promise<void>;
}

/**
 * Processes generate and assemble jobs. Each generate job runs the runner's own item step against
 * the run's shared journal (a mounted folder's file, or a bucket run's Redis stream), so a job
 * taken over from a killed worker re-attaches to the journaled request instead of submitting
 * again. A bucket run's files are made in a scratch folder of this process and uploaded.
 */
export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const { prefix = "hailuo", concurrency = 2, lockDurationMs = 30_000, log = () => {} } = options;
  const connection = await openRedis(options.redisUrl);
  const stores = createRunStores({ redis: connection, keyPrefix: prefix });
  const stop = new AbortController();
  const items = createItemWorker({
    client: options.client,
    backend: options.backend,
    signal: stop.signal,
    emit: options.onEvent,
    retries: options.retries,
    retryBaseDelayMs: options.retryBaseDelayMs,
    // Every worker of a run reserves against one budget in Redis, as a local run does in memory.
    budgetFor: (store, required) => runBudget(connection, prefix, runIdFor(store.url), required),
  });

  // BullMQ gives a job that stalled (this worker paused, or cut off from Redis past its lock) to
  // another worker, which submits the journaled scene itself: from then on this one must not.
  const lockLost = (job: Job) =>
    new RunLockedError(
      `job ${job.id} (${runIdFor(job.data.runDir)}) is held by another worker now (its lock lapsed); stopped so two workers never submit the same scene`,
    );
  const generate = async (job: Job<GenerateJobData>, token?: string, signal?: AbortSignal) => {
    const { runDir, key } = job.data;
    log(`job ${job.id}: ${job.data.scene}#${job.data.take} started`);
    const store = stores.of(runDir);
    await scratchReady(store);
    const held = {
      signal,
      // One Redis round trip before each record and each send: the lock renewed, or refused.
      confirm: async () => {
        if (!token || (await job.extendLock(token, lockDurationMs)) !== 1) throw lockLost(job);
      },
    };
    const r = await items.run(store, key, held).catch((error: HailuoError) => {
      // A job that must never run here (not in run.json, a local run holds the folder, another backend).
      throw error.retryable === false ? new UnrecoverableError(error.message) : error;
    });
    log(`job ${job.id}: ${r.sceneId}#${r.take} (from ${r.from}): ${r.outcome}`);
    await dropScratchClip(store, r.file);
    if (r.outcome === "interrupted") {
      if (signal?.aborted && !stop.signal.aborted) throw lockLost(job);
      // A worker that stops is no failed attempt: counted as one, five stops would fail the job
      // and let the assemble end the run while its request is live. It goes back as it was.
      if (token) {
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError("worker stopped; the request stays journaled for the next worker");
      }
      throw new Error("worker stopped; the request stays journaled for the next worker");
    }
    if (r.outcome === "failed")
      throw new UnrecoverableError(
        `${r.error?.code ?? "failed"}: ${r.error?.message ?? "generation failed"}`,
      );
    return { outcome: r.outcome, file: r.file };
  };

  const assemble = async (job: Job<AssembleJobData>) => {
    const { runDir } = job.data;
    const runId = runIdFor(runDir);
    const store = stores.of(runDir);
    await scratchReady(store);
    const { manifest, report } = await items.finish(store);
    await closeRunBudget(connection, prefix, runId);
    // A scheduled run's day counts what it billed (and may have been billed twice) from here on,
    // not its reservation; its job's next run may start once the film is made (or failed).
    const fromSchedule = await scheduledRun(connection, prefix, runId);
    const t = report.totals;
    const spentUsd = t.billedUsd + t.possibleDoubleChargeUsd + t.inFlightUsd;
    if (fromSchedule)
      await settleJobRun(connection, prefix, {
        job: fromSchedule.job,
        day: fromSchedule.day,
        runId,
        spentUsd,
      });
    let failure: Error | undefined;
    try {
      await materializeRun(
        store,
        report.items.flatMap((i) => (i.file ? [i.file] : [])),
      );
      const media = await runMediaStage(store.dir, manifest, {
        signal: stop.signal,
        ...(store.kind === "local" ? {} : { runAddress: store.url }),
      });
      const kept = await keepOutputs(store);
      log(
        `job ${job.id}: assembled ${media.film?.file ?? "(no film section)"}${kept.length ? ` (${kept.length} file(s) uploaded to ${store.url})` : ""}`,
      );
      return { film: media.film?.file, page: media.page, skipped: media.skipped };
    } catch (error) {
      failure = error as Error;
      throw error;
    } finally {
      items.forget(store);
      await stores.forget(runDir);
      // A worker stopped mid-assemble leaves the run holding its job: it has not ended.
      if (fromSchedule && !(failure && stop.signal.aborted)) {
        await releaseJobRun(connection, prefix, fromSchedule.job, runId);
        const status = failure || t.failed > 0 ? "failed" : "ok";
        const reason =
          failure?.message ?? (t.failed > 0 ? `${t.failed} generation(s) failed` : undefined);
        await appendHistory(fromSchedule.outputRoot, {
          job: fromSchedule.job,
          fireAt: fromSchedule.fireAt,
          status,
          runDir,
          endedAt: new Date().toISOString(),
          spentUsd,
          ...(reason ? { reason } : {}),
          pid: process.pid,
        });
      }
    }
  };

  // A fire is planned and held to its budgets at the account's price, as the runner prices a run.
  const price = () => livePrice(options.client, HAILUO_ENDPOINT);
  const scheduled = (job: Job<ScheduleJobData>) =>
    processScheduledFire(
      job,
      { redisUrl: options.redisUrl, prefix },
      { price, client: options.client },
    );

  const workerOpts = {
    connection,
    prefix,
    lockDuration: lockDurationMs,
    stalledInterval: Math.max(1000, Math.floor(lockDurationMs / 2)),
    maxStalledCount: 5,
  };
  const workers: Worker[] = [
    new Worker<GenerateJobData>(QUEUES.generate, generate, { ...workerOpts, concurrency }),
    new Worker<AssembleJobData>(QUEUES.assemble, assemble, { ...workerOpts, concurrency: 1 }),
    new Worker<ScheduleJobData>(QUEUES.schedule, scheduled, { ...workerOpts, concurrency: 1 }),
  ];
  for (const w of workers) w.on("error", (e) => log(`worker error: ${e.message}`));
  // A lock that could not be renewed may already be another worker's: its job stops at once, a
  // submit on the wire included (journaled, so the next holder looks it up on fal).
  workers[0]!.on("lockRenewalFailed", (ids) => {
    for (const id of ids) workers[0]!.cancelJob(id, "lock lost");
  });
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  return {
    async close() {
      stop.abort();
      await Promise.all(workers.map((w) => w.close()));
      await items.close();
      await stores.close();
      connection.disconnect();
    },
  };
}
