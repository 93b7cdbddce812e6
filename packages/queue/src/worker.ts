import { join } from "node:path";
import { UnrecoverableError, Worker, type Job } from "bullmq";
import type { HailuoClient } from "@hailuo/core";
import {
  JournalStore,
  buildReport,
  checkBackend,
  clipIntact,
  newItemState,
  planRun,
  processItem,
  readJournal,
  readRunFile,
  readRunManifest,
  replayJournal,
  runLockHeld,
  writeReports,
  type Backend,
  type RunEvent,
} from "@hailuo/runner";
import { runMediaStage } from "@hailuo/publish";
import { HailuoError } from "@hailuo/shared";
import type { AssembleJobData, GenerateJobData } from "./run-flow.js";
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
 * the run folder's shared journal, so a job taken over from a killed worker re-attaches to the
 * journaled request instead of submitting again.
 */
export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const { prefix = "hailuo", concurrency = 2, lockDurationMs = 30_000, log = () => {} } = options;
  const connection = await openRedis(options.redisUrl);
  const stop = new AbortController();
  const journals = new Map<string, Promise<JournalStore>>();
  const journalFor = (runDir: string) => {
    let j = journals.get(runDir);
    if (!j) journals.set(runDir, (j = JournalStore.open(join(runDir, "journal.jsonl"))));
    return j;
  };

  // Read and plan run.json once per run folder; a key the cached plan lacks means the run was
  // re-enqueued with an edited manifest, so read it again.
  const plans = new Map<string, Promise<ReturnType<typeof planRun>>>();
  const findItem = async (runDir: string, key: string) => {
    const cached = plans.get(runDir);
    const hit = cached && (await cached).find((p) => p.key === key);
    if (hit) return hit;
    const fresh = readRunManifest(runDir).then(planRun);
    plans.set(runDir, fresh);
    return (await fresh).find((p) => p.key === key);
  };

  const generate = async (job: Job<GenerateJobData>) => {
    const { runDir, key } = job.data;
    const item = await findItem(runDir, key);
    if (!item) throw new UnrecoverableError(`generation ${key} is not in ${runDir}/run.json`);
    if (await runLockHeld(runDir)) throw new UnrecoverableError(`${runDir} is being run by a local hailuo process (run.lock is held); a worker never submits into it`);
    try {
      checkBackend(runDir, (await readRunFile(runDir))?.backend, options.backend);
    } catch (error) {
      throw new UnrecoverableError((error as Error).message);
    }
    const { records } = await readJournal(join(runDir, "journal.jsonl"));
    const states = replayJournal(records);
    const state = states.get(key) ?? newItemState(key);
    const known = new Set([...states.values()].flatMap((s) => s.requestIds));
    log(`job ${job.id}: ${item.sceneId}#${item.take} (${state.live ? "re-attaching" : state.phase})`);
    let authError: HailuoError | undefined;
    const outcome = await processItem(item, {
      runDir,
      client: options.client,
      journal: await journalFor(runDir),
      state,
      intact: state.phase === "done" && (await clipIntact(runDir, state.clip)),
      signal: stop.signal,
      emit: options.onEvent ?? (() => {}),
      retries: options.retries,
      retryBaseDelayMs: options.retryBaseDelayMs,
      onStopRun: (e) => (authError = e),
      knownRequestIds: () => known,
    });
    log(`job ${job.id}: ${outcome}`);
    if (outcome === "interrupted") throw new Error("worker stopped; the request stays journaled for the next worker");
    if (outcome === "failed") {
      const err = replayJournal((await readJournal(join(runDir, "journal.jsonl"))).records).get(key)?.error;
      throw new UnrecoverableError(authError ? authError.message : `${err?.code ?? "failed"}: ${err?.message ?? "generation failed"}`);
    }
    return { outcome, file: state.clip?.file };
  };

  const assemble = async (job: Job<AssembleJobData>) => {
    const { runDir } = job.data;
    const manifest = await readRunManifest(runDir);
    const { records } = await readJournal(join(runDir, "journal.jsonl"));
    const report = buildReport(manifest, runDir, records, { thisRunFrom: records.findLastIndex((r) => r.t === "enqueued") });
    await writeReports(runDir, report);
    const media = await runMediaStage(runDir, manifest, { signal: stop.signal });
    // The distributed run is over: the folder may be run locally again.
    await (await journalFor(runDir)).append({ t: "finished", ok: report.totals.done + report.totals.cached, failed: report.totals.failed });
    log(`job ${job.id}: assembled ${media.film?.file ?? "(no film section)"}`);
    return { film: media.film?.file, page: media.page, skipped: media.skipped };
  };

  const scheduled = (job: Job<ScheduleJobData>) => processScheduledFire(job, { redisUrl: options.redisUrl, prefix });

  const workerOpts = { connection, prefix, lockDuration: lockDurationMs, stalledInterval: Math.max(1000, Math.floor(lockDurationMs / 2)), maxStalledCount: 5 };
  const workers: Worker[] = [
    new Worker<GenerateJobData>(QUEUES.generate, generate, { ...workerOpts, concurrency }),
    new Worker<AssembleJobData>(QUEUES.assemble, assemble, { ...workerOpts, concurrency: 1 }),
    new Worker<ScheduleJobData>(QUEUES.schedule, scheduled, { ...workerOpts, concurrency: 1 }),
  ];
  for (const w of workers) w.on("error", (e) => log(`worker error: ${e.message}`));
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  return {
    async close() {
      stop.abort();
      await Promise.all(workers.map((w) => w.close()));
      for (const j of journals.values()) await (await j).close();
      connection.disconnect();
    },
  };
}
