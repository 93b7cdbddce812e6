import { existsSync } from "node:fs";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import lockfile from "proper-lockfile";
import { calendarParts } from "@hailuo/manifest";
import { HailuoError, systemClock, type Clock } from "@hailuo/shared";
import { appendHistory, readHistory, readLastFire, writeLastFire, type HistoryRecord } from "./history.js";
import { nextFireTimes, type JobDefinition } from "./job-definition.js";

/** How one scheduled run ended. */
export interface RunOutcome {
  status: "ok" | "failed" | "interrupted";
  exitCode: number;
  spentUsd: number;
  message?: string;
}

/** Runs one fire of a job into `runDir`; the default one runs the manifest with the runner. */
export type JobExecutor = (job: JobDefinition, fire: { fireAt: Date; runDir: string; budgetUsd?: number; signal: AbortSignal }) => Promise<RunOutcome>;

/** Options of `createScheduler`. */
export interface SchedulerOptions {
  jobs: JobDefinition[];
  execute: JobExecutor;
  /** Injectable time, so tests drive schedules without waiting. @default systemClock */
  clock?: Clock;
  log?: (line: string) => void;
}

/** A scheduler over a set of jobs. */
export interface Scheduler {
  /** Handles missed runs, then fires jobs on their schedules until `signal` aborts; waits for running jobs to stop. */
  start(signal: AbortSignal): Promise<void>;
  /** Fires a job now (`hailuo schedule --once`), with the same locks, budget and history. */
  runNow(name: string, signal: AbortSignal): Promise<HistoryRecord | undefined>;
  /** The next fire time of every job. */
  upcoming(): { job: string; next: Date | undefined }[];
  /** Jobs with a fire in progress (a new fire of one of them is recorded as skipped). */
  busy(): string[];
}

const RUN_DIR = /^\d{4}-\d{2}-\d{2}_\d{4}/;

/** The run folder name for a fire time, in the job's time zone: `YYYY-MM-DD_HHMM`. */
export function runStamp(fireAt: Date, timeZone: string): string {
  const p = calendarParts(fireAt, timeZone);
  return `${p.year}-${p.month}-${p.day}_${p.hour}${p.minute}`;
}

/** Dollars a job has spent on the calendar day (in its time zone) of `day`. */
export function spentOnDay(history: HistoryRecord[], day: Date, timeZone: string): number {
  const key = runStamp(day, timeZone).slice(0, 10);
  return history.filter((h) => h.spentUsd && runStamp(new Date(h.fireAt), timeZone).slice(0, 10) === key).reduce((s, h) => s + (h.spentUsd ?? 0), 0);
}

/**
 * Deletes the oldest finished runs beyond `keep`. Interrupted runs (still resumable, and paid
 * for) and runs that history does not know (another scheduler may be writing them) stay.
 */
export async function pruneRuns(job: JobDefinition): Promise<string[]> {
  if (job.keep <= 0) return [];
  const history = await readHistory(job.outputRoot);
  const finished = new Map(history.filter((h) => h.runDir && (h.status === "ok" || h.status === "failed")).map((h) => [h.runDir!, h]));
  const interrupted = new Set(history.filter((h) => h.status === "interrupted").map((h) => h.runDir));
  const dirs = (await readdir(job.outputRoot, { withFileTypes: true }).catch(() => []))
    .filter((d) => d.isDirectory() && RUN_DIR.test(d.name))
    .map((d) => join(job.outputRoot, d.name))
    .filter((d) => finished.has(d) && !interrupted.has(d))
    .sort()
    .reverse();
  const doomed = dirs.slice(job.keep);
  for (const d of doomed) await rm(d, { recursive: true, force: true });
  // Fire locks are released after each fire; one left by a crash is stale long before a week.
  const locks = join(job.outputRoot, ".locks");
  for (const f of await readdir(locks).catch(() => [])) {
    const info = await stat(join(locks, f)).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > 7 * 86_400_000) await rm(join(locks, f), { force: true, recursive: true });
  }
  return doomed;
}

/**
 * Creates a scheduler: fires each job on its cron schedule (croner, in the job's time zone),
 * never two runs of one job at once, takes a per-fire lock file in the job's output root so
 * two schedulers (one machine or shared storage) never both fire, handles runs missed while it
 * was down (skip or catch up once), writes history.jsonl and prunes old runs.
 */
export function createScheduler(options: SchedulerOptions): Scheduler {
  const { jobs, execute, clock = systemClock, log = () => {} } = options;
  const running = new Map<string, Promise<HistoryRecord | undefined>>();

  async function fire(job: JobDefinition, fireAt: Date, signal: AbortSignal, manual = false): Promise<HistoryRecord | undefined> {
    const base = { job: job.name, fireAt: fireAt.toISOString(), pid: process.pid };
    if (running.has(job.name)) {
      const rec: HistoryRecord = { ...base, status: "skipped", reason: "the previous run of this job is still going" };
      await appendHistory(job.outputRoot, rec);
      log(`${job.name}: skipped ${base.fireAt}: previous run still going`);
      return rec;
    }
    const stamp = `${runStamp(fireAt, job.timeZone)}${manual ? "-manual" : ""}`;
    // Claimed synchronously, before any await, so a second fire of this job sees it.
    const task = (async (): Promise<HistoryRecord | undefined> => {
      const release = await takeFireLock(job, stamp, fireAt);
      if (!release) {
        log(`${job.name}: ${base.fireAt} already fired by another scheduler`);
        return undefined;
      }
      try {
        return await runFire({ job, fireAt, stamp, manual, signal, execute, clock, log });
      } finally {
        await release().catch(() => {});
      }
    })();
    running.set(job.name, task);
    try {
      return await task;
    } finally {
      running.delete(job.name);
    }
  }

  async function handleMissed(job: JobDefinition, signal: AbortSignal): Promise<void> {
    const last = await readLastFire(job.outputRoot);
    if (!last) {
      // First start: nothing can have been missed; remember now as the reference.
      await writeLastFire(job.outputRoot, new Date(clock.now()));
      return;
    }
    const now = clock.now();
    const missed = nextFireTimes(job, last, 1000).filter((d) => d.getTime() <= now);
    if (missed.length === 0) return;
    const latest = missed[missed.length - 1]!;
    const reported = job.missed === "catch-up" ? missed.slice(0, -1) : missed;
    for (const at of reported) {
      await appendHistory(job.outputRoot, { job: job.name, fireAt: at.toISOString(), status: "missed", reason: `scheduler was not running (policy: ${job.missed})`, pid: process.pid });
    }
    log(`${job.name}: ${missed.length} run(s) missed while stopped; policy ${job.missed}`);
    if (job.missed === "catch-up") fire(job, latest, signal).catch((e: Error) => log(`${job.name}: could not catch up: ${e.message}`));
    else await writeLastFire(job.outputRoot, latest);
  }

  return {
    async start(signal) {
      for (const job of jobs) await handleMissed(job, signal);
      while (!signal.aborted) {
        const now = clock.now();
        const plan = jobs.map((job) => ({ job, at: nextFireTimes(job, new Date(now))[0] })).filter((p): p is { job: JobDefinition; at: Date } => Boolean(p.at));
        if (plan.length === 0) break;
        const soonest = Math.min(...plan.map((p) => p.at.getTime()));
        try {
          await clock.sleep(soonest - now, signal);
        } catch {
          break;
        }
        for (const p of plan) if (p.at.getTime() <= clock.now()) fire(p.job, p.at, signal).catch((e: Error) => log(`${p.job.name}: could not fire: ${e.message}`));
      }
      await Promise.all(running.values());
    },
    async runNow(name, signal) {
      const job = jobs.find((j) => j.name === name);
      if (!job) throw new HailuoError("usage", `no job named ${name} (have: ${jobs.map((j) => j.name).join(", ") || "none"})`);
      return fire(job, new Date(clock.now()), signal, true);
    },
    busy: () => [...running.keys()],
    upcoming() {
      const now = new Date(clock.now());
      return jobs.map((j) => ({ job: j.name, next: nextFireTimes(j, now)[0] }));
    },
  };
}

/**
 * Claims one fire for this scheduler: proper-lockfile's lock (an atomic mkdir, refreshed while
 * held, safe on shared storage) while the fire runs, and, once held, a look at what an earlier
 * holder left (its history record, or its run folder when it died mid-run). Undefined: another
 * scheduler fired it.
 */
async function takeFireLock(job: JobDefinition, stamp: string, fireAt: Date): Promise<(() => Promise<void>) | undefined> {
  const dir = join(job.outputRoot, ".locks");
  await mkdir(dir, { recursive: true });
  const release = await lockfile.lock(dir, { lockfilePath: join(dir, `${stamp}.lock`), realpath: false, stale: 10_000 }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ELOCKED") return undefined;
    throw error;
  });
  if (!release) return undefined;
  const fired = (await readHistory(job.outputRoot)).some((h) => h.fireAt === fireAt.toISOString() && h.status !== "skipped") || existsSync(join(job.outputRoot, stamp));
  if (!fired) return release;
  await release();
  return undefined;
}

/** One claimed fire: the daily budget, the run itself, its history record and retention. */
async function runFire(f: { job: JobDefinition; fireAt: Date; stamp: string; manual: boolean; signal: AbortSignal; execute: SchedulerOptions["execute"]; clock: Clock; log: (line: string) => void }): Promise<HistoryRecord> {
  const { job, fireAt, stamp, manual, signal, execute, clock, log } = f;
  const base = { job: job.name, fireAt: fireAt.toISOString(), pid: process.pid };
  if (!manual) await writeLastFire(job.outputRoot, fireAt);
  let budgetUsd = job.budget.perRunUsd;
  if (job.budget.perDayUsd !== undefined) {
    const left = job.budget.perDayUsd - spentOnDay(await readHistory(job.outputRoot), fireAt, job.timeZone);
    if (left <= 0) {
      const rec: HistoryRecord = { ...base, status: "skipped", reason: `daily budget of $${job.budget.perDayUsd.toFixed(2)} is spent` };
      await appendHistory(job.outputRoot, rec);
      log(`${job.name}: skipped: ${rec.reason}`);
      return rec;
    }
    budgetUsd = Math.min(budgetUsd ?? left, left);
  }
  const runDir = join(job.outputRoot, stamp);
  const startedAt = new Date(clock.now()).toISOString();
  log(`${job.name}: run ${stamp} started`);
  let outcome: RunOutcome;
  try {
    outcome = await execute(job, { fireAt, runDir, budgetUsd, signal });
  } catch (error) {
    outcome = { status: signal.aborted ? "interrupted" : "failed", exitCode: 1, spentUsd: 0, message: (error as Error).message };
  }
  const rec: HistoryRecord = { ...base, status: outcome.status, runDir, startedAt, endedAt: new Date(clock.now()).toISOString(), exitCode: outcome.exitCode, spentUsd: outcome.spentUsd, ...(outcome.message ? { reason: outcome.message } : {}) };
  await appendHistory(job.outputRoot, rec);
  log(`${job.name}: run ${stamp} ${outcome.status}${outcome.message ? `: ${outcome.message}` : ""}${outcome.status === "interrupted" ? ` (resume with: hailuo resume ${runDir})` : ""}`);
  const pruned = await pruneRuns(job);
  if (pruned.length) log(`${job.name}: removed ${pruned.length} old run(s)`);
  return rec;
}
