import { existsSync } from "node:fs";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import lockfile from "proper-lockfile";
import { calendarParts } from "@hailuo/manifest";
import { readRunReport, runLockHeld } from "@hailuo/runner";
import { HailuoError, systemClock, type Clock } from "@hailuo/shared";
import {
  appendHistory,
  readHistory,
  readLastFire,
  writeLastFire,
  type HistoryRecord,
} from "./history.js";
import { nextFireTimes, type JobDefinition } from "./job-definition.js";
import { describeOwner, tryJobRunLock, type RunLockOwner } from "./job-lock.js";

/** How one scheduled run ended. */
export interface RunOutcome {
  status: "ok" | "failed" | "interrupted";
  exitCode: number;
  spentUsd: number;
  message?: string;
}

/** Runs one fire of a job into `runDir`; the default one runs the manifest with the runner. */
export type JobExecutor = (
  job: JobDefinition,
  fire: { fireAt: Date; runDir: string; budgetUsd?: number; signal: AbortSignal },
) => Promise<RunOutcome>;

/** Options of `createScheduler`. */
export interface SchedulerOptions {
  jobs: JobDefinition[];
  execute: JobExecutor;
  /** Injectable time, so tests drive schedules without waiting. @default systemClock */
  clock?: Clock;
  log?: (line: string) => void;
  /** How long a job's run lock may go unrefreshed before it counts as a dead holder's. @default 30000 */
  lockStaleMs?: number;
}

/** A scheduler over a set of jobs. */
export interface Scheduler {
  /** Handles missed runs, then fires jobs on their schedules until `signal` aborts; waits for running jobs to stop. */
  start(signal: AbortSignal): Promise<void>;
  /** Fires a job now (`hailuo schedule --once`), with the same locks, budget and history. */
  runNow(name: string, signal: AbortSignal): Promise<HistoryRecord | undefined>;
  /** The next fire time of every job. */
  upcoming(): { job: string; next: Date | undefined }[];
  /** Jobs with a run in progress in this process (a new fire of one, from anywhere, is skipped). */
  busy(): string[];
}

const RUN_DIR = /^\d{4}-\d{2}-\d{2}_\d{4}/;

/** The run folder name for a fire time, in the job's time zone: `YYYY-MM-DD_HHMM`. */
export function runStamp(fireAt: Date, timeZone: string): string {
  const p = calendarParts(fireAt, timeZone);
  return `${p.year}-${p.month}-${p.day}_${p.hour}${p.minute}`;
}

/**
 * Dollars a job has spent or holds on the calendar day (in its time zone) of `day`: each run's
 * end record, or while it has none (in flight, or its process died) the reservation of its
 * `started` record. Pure: the same fold for every process that reads the history.
 */
export function spentOnDay(history: HistoryRecord[], day: Date, timeZone: string): number {
  const key = runStamp(day, timeZone).slice(0, 10);
  const reserved = new Map<string, number>();
  const ended = new Map<string, number>();
  for (const h of history) {
    if (runStamp(new Date(h.fireAt), timeZone).slice(0, 10) !== key) continue;
    const run = h.runDir ?? h.fireAt;
    if (h.status === "started") reserved.set(run, h.reservedUsd ?? 0);
    // The latest end record of a run is the best count (a settled crash, then its late end).
    else if (h.spentUsd !== undefined) ended.set(run, h.spentUsd);
  }
  let usd = 0;
  for (const [run, r] of reserved) if (!ended.has(run)) usd += r;
  for (const e of ended.values()) usd += e;
  return usd;
}

/**
 * Deletes the oldest finished runs beyond `keep`. Interrupted runs (still resumable, and paid
 * for) and runs that history does not know (another scheduler may be writing them) stay.
 */
export async function pruneRuns(job: JobDefinition): Promise<string[]> {
  if (job.keep <= 0) return [];
  const history = await readHistory(job.outputRoot);
  const finished = new Map(
    history
      .filter((h) => h.runDir && (h.status === "ok" || h.status === "failed"))
      .map((h) => [h.runDir!, h]),
  );
  const interrupted = new Set(
    history.filter((h) => h.status === "interrupted").map((h) => h.runDir),
  );
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
    if (info && Date.now() - info.mtimeMs > 7 * 86_400_000)
      await rm(join(locks, f), { force: true, recursive: true });
  }
  return doomed;
}

/**
 * Creates a scheduler: fires each job on its cron schedule (croner, in the job's time zone),
 * takes a per-fire lock file in the job's output root so two schedulers (one machine or shared
 * storage) never both fire one time, and the job's run lock for the whole run so no two runs of
 * a job overlap in any process (a fire that finds it held is recorded as skipped, naming the
 * holder); checks and reserves `per_day` under that lock; handles runs missed while it was down
 * (skip or catch up once), writes history.jsonl and prunes old runs.
 */
export function createScheduler(options: SchedulerOptions): Scheduler {
  const { jobs, execute, clock = systemClock, log = () => {}, lockStaleMs } = options;
  const tasks = new Set<Promise<unknown>>();
  const busy = new Map<string, number>();

  function fire(
    job: JobDefinition,
    fireAt: Date,
    signal: AbortSignal,
    manual = false,
  ): Promise<HistoryRecord | undefined> {
    const task = fireOnce(job, fireAt, signal, manual);
    tasks.add(task);
    void task.then(
      () => tasks.delete(task),
      () => tasks.delete(task),
    );
    return task;
  }

  async function fireOnce(
    job: JobDefinition,
    fireAt: Date,
    signal: AbortSignal,
    manual: boolean,
  ): Promise<HistoryRecord | undefined> {
    const base = { job: job.name, fireAt: fireAt.toISOString(), pid: process.pid };
    const stamp = `${runStamp(fireAt, job.timeZone)}${manual ? "-manual" : ""}`;
    if (job.store) {
      // A bucket run's records live in Redis and its clips are made by workers.
      const rec: HistoryRecord = {
        ...base,
        status: "skipped",
        reason: `store: ${job.store} runs on workers: register the job with \`hailuo schedule --redis URL\``,
      };
      await appendHistory(job.outputRoot, rec);
      log(`${job.name}: skipped ${base.fireAt}: ${rec.reason}`);
      return rec;
    }
    const ac = new AbortController();
    const takeRunLock = () =>
      tryJobRunLock(
        job.outputRoot,
        job.name,
        { fireAt: base.fireAt, runDir: join(job.outputRoot, stamp) },
        {
          staleMs: lockStaleMs,
          // Someone took the lock over (this process stalled past the stale time): stop, resumable.
          onCompromised: (error) => {
            log(
              `${job.name}: run lock lost (${error.message}); stopping run ${stamp}, it stays resumable`,
            );
            ac.abort(error);
          },
        },
      );
    const skip = async (heldBy: RunLockOwner | undefined): Promise<HistoryRecord> => {
      const rec: HistoryRecord = {
        ...base,
        status: "skipped",
        reason: `still running (${describeOwner(heldBy)})`,
      };
      await appendHistory(job.outputRoot, rec);
      log(`${job.name}: skipped ${base.fireAt}: ${rec.reason}`);
      return rec;
    };
    // A scheduled time is first claimed (so a second scheduler stays silent about a time the
    // first took); a manual fire has a time of its own and asks the run lock first, so `--once`
    // during any run of the job is refused by name.
    let lock = manual ? await takeRunLock() : undefined;
    if (lock && "heldBy" in lock) return skip(lock.heldBy);
    const held = lock;
    const releaseFire = await takeFireLock(job, stamp, fireAt).catch(async (error: unknown) => {
      await held?.release();
      throw error;
    });
    if (!releaseFire) {
      await held?.release();
      log(`${job.name}: ${base.fireAt} already fired by another scheduler`);
      return undefined;
    }
    try {
      // One guard for overlap, in this process or any other: the job's run lock, held for the run.
      lock ??= await takeRunLock();
      if ("heldBy" in lock) return await skip(lock.heldBy);
      const stop = () => ac.abort(signal.reason);
      if (signal.aborted) stop();
      signal.addEventListener("abort", stop, { once: true });
      busy.set(job.name, (busy.get(job.name) ?? 0) + 1);
      try {
        return await runFire({
          job,
          fireAt,
          stamp,
          manual,
          signal: ac.signal,
          execute,
          clock,
          log,
        });
      } finally {
        signal.removeEventListener("abort", stop);
        const n = (busy.get(job.name) ?? 1) - 1;
        if (n > 0) busy.set(job.name, n);
        else busy.delete(job.name);
        await lock.release();
      }
    } finally {
      await releaseFire().catch(() => {});
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
      await appendHistory(job.outputRoot, {
        job: job.name,
        fireAt: at.toISOString(),
        status: "missed",
        reason: `scheduler was not running (policy: ${job.missed})`,
        pid: process.pid,
      });
    }
    log(`${job.name}: ${missed.length} run(s) missed while stopped; policy ${job.missed}`);
    if (job.missed === "catch-up")
      fire(job, latest, signal).catch((e: Error) =>
        log(`${job.name}: could not catch up: ${e.message}`),
      );
    else await writeLastFire(job.outputRoot, latest);
  }

  return {
    async start(signal) {
      for (const job of jobs) await handleMissed(job, signal);
      while (!signal.aborted) {
        const now = clock.now();
        const plan = jobs
          .map((job) => ({ job, at: nextFireTimes(job, new Date(now))[0] }))
          .filter((p): p is { job: JobDefinition; at: Date } => Boolean(p.at));
        if (plan.length === 0) break;
        const soonest = Math.min(...plan.map((p) => p.at.getTime()));
        try {
          await clock.sleep(soonest - now, signal);
        } catch {
          break;
        }
        for (const p of plan)
          if (p.at.getTime() <= clock.now())
            fire(p.job, p.at, signal).catch((e: Error) =>
              log(`${p.job.name}: could not fire: ${e.message}`),
            );
      }
      while (tasks.size) await Promise.allSettled([...tasks]);
    },
    async runNow(name, signal) {
      const job = jobs.find((j) => j.name === name);
      if (!job)
        throw new HailuoError(
          "usage",
          `no job named ${name} (have: ${jobs.map((j) => j.name).join(", ") || "none"})`,
        );
      return fire(job, new Date(clock.now()), signal, true);
    },
    busy: () => [...busy.keys()],
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
async function takeFireLock(
  job: JobDefinition,
  stamp: string,
  fireAt: Date,
): Promise<(() => Promise<void>) | undefined> {
  const dir = join(job.outputRoot, ".locks");
  await mkdir(dir, { recursive: true });
  // proper-lockfile keys its held locks by the first argument: one name per lock, not the folder.
  // Losing it late is harmless (the run lock guards the run, the `started` record the time), so
  // it must not throw from a timer and take the process down.
  const onCompromised = () => {};
  const release = await lockfile
    .lock(join(dir, stamp), {
      lockfilePath: join(dir, `${stamp}.lock`),
      realpath: false,
      stale: 10_000,
      onCompromised,
    })
    .catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ELOCKED") return undefined;
      throw error;
    });
  if (!release) return undefined;
  // Any decision on this fire time (a run started, a skip) was taken under this lock: stand by it.
  const fired =
    (await readHistory(job.outputRoot)).some(
      (h) => h.fireAt === fireAt.toISOString() && h.status !== "missed",
    ) || existsSync(join(job.outputRoot, stamp));
  if (!fired) return release;
  await release();
  return undefined;
}

/** One claimed fire: the daily budget, the run itself, its history record and retention. */
async function runFire(f: {
  job: JobDefinition;
  fireAt: Date;
  stamp: string;
  manual: boolean;
  signal: AbortSignal;
  execute: SchedulerOptions["execute"];
  clock: Clock;
  log: (line: string) => void;
}): Promise<HistoryRecord> {
  const { job, fireAt, stamp, manual, signal, execute, clock, log } = f;
  const base = { job: job.name, fireAt: fireAt.toISOString(), pid: process.pid };
  if (!manual) await writeLastFire(job.outputRoot, fireAt);
  let budgetUsd = job.budget.perRunUsd;
  // Under the job's run lock no other run of this job is starting or going: settling runs left
  // by dead processes, the daily check and the reservation (the `started` record) are one step.
  const history = await settleDeadRuns(job, await readHistory(job.outputRoot), log);
  if (job.budget.perDayUsd !== undefined) {
    const left = job.budget.perDayUsd - spentOnDay(history, fireAt, job.timeZone);
    if (left < 0.005) {
      const rec: HistoryRecord = {
        ...base,
        status: "skipped",
        reason: `daily budget of $${job.budget.perDayUsd.toFixed(2)} is spent`,
      };
      await appendHistory(job.outputRoot, rec);
      log(`${job.name}: skipped: ${rec.reason}`);
      return rec;
    }
    budgetUsd = Math.min(budgetUsd ?? left, left);
  }
  const runDir = join(job.outputRoot, stamp);
  const startedAt = new Date(clock.now()).toISOString();
  await appendHistory(job.outputRoot, {
    ...base,
    status: "started",
    runDir,
    startedAt,
    ...(budgetUsd !== undefined ? { reservedUsd: budgetUsd } : {}),
  });
  log(`${job.name}: run ${stamp} started`);
  let outcome: RunOutcome;
  try {
    outcome = await execute(job, { fireAt, runDir, budgetUsd, signal });
  } catch (error) {
    outcome = {
      status: signal.aborted ? "interrupted" : "failed",
      exitCode: 1,
      spentUsd: 0,
      message: (error as Error).message,
    };
  }
  // A run that did not end well may have paid before it failed, or left requests that still bill.
  const spentUsd =
    outcome.status === "ok"
      ? outcome.spentUsd
      : Math.max(outcome.spentUsd, (await journaledSpendUsd(runDir)) ?? budgetUsd ?? 0);
  const rec: HistoryRecord = {
    ...base,
    status: outcome.status,
    runDir,
    startedAt,
    endedAt: new Date(clock.now()).toISOString(),
    exitCode: outcome.exitCode,
    spentUsd,
    ...(outcome.message ? { reason: outcome.message } : {}),
  };
  await appendHistory(job.outputRoot, rec);
  log(
    `${job.name}: run ${stamp} ${outcome.status}${outcome.message ? `: ${outcome.message}` : ""}${outcome.status === "interrupted" ? ` (resume with: hailuo resume ${runDir})` : ""}`,
  );
  const pruned = await pruneRuns(job);
  if (pruned.length) log(`${job.name}: removed ${pruned.length} old run(s)`);
  return rec;
}

/**
 * Runs that have a `started` record and no end record, seen while holding the job's run lock,
 * were left by a process that died (or lost the lock): each gets an `interrupted` record with
 * what its journal says it spent or may still be billed, so it stops holding its whole
 * reservation. A run folder someone is resuming right now keeps its reservation.
 */
async function settleDeadRuns(
  job: JobDefinition,
  history: HistoryRecord[],
  log: (line: string) => void,
): Promise<HistoryRecord[]> {
  const ended = new Set(
    history.filter((h) => h.status !== "started" && h.runDir).map((h) => h.runDir),
  );
  const dead = history.filter((h) => h.status === "started" && h.runDir && !ended.has(h.runDir));
  const out = [...history];
  for (const h of dead) {
    const runDir = h.runDir!;
    if (await runLockHeld(runDir).catch(() => false)) continue;
    const spentUsd = (await journaledSpendUsd(runDir)) ?? h.reservedUsd ?? 0;
    const rec: HistoryRecord = {
      job: h.job,
      fireAt: h.fireAt,
      status: "interrupted",
      runDir,
      reason: `its scheduler (pid ${h.pid}) stopped mid-run; resume with: hailuo resume ${runDir}`,
      spentUsd,
      pid: process.pid,
    };
    await appendHistory(job.outputRoot, rec);
    log(
      `${job.name}: run ${runDir} was left mid-run by pid ${h.pid}; counted at $${spentUsd.toFixed(2)}`,
    );
    out.push(rec);
  }
  return out;
}

/**
 * What a run folder's journal says was billed or may still be billed (requests in flight, lost
 * submits); 0 when the run never got as far as a journal, undefined when one is there but unreadable.
 */
async function journaledSpendUsd(runDir: string): Promise<number | undefined> {
  if (!existsSync(join(runDir, "journal.jsonl"))) return 0;
  const t = (await readRunReport(runDir).catch(() => undefined))?.totals;
  return t ? t.billedUsd + t.inFlightUsd + t.possibleDoubleChargeUsd : undefined;
}
