import type { Redis } from "ioredis";
import { micros } from "./run-budget.js";

/**
 * The run of a scheduled job that holds the job's "run in flight" key: the value of that key, so
 * a fire that finds it can say which run is in the way and since when, and tell a live run from
 * one that is gone.
 */
export interface JobRunHolder {
  runId: string;
  runDir: string;
  /** The fire time of the run (ISO). */
  fireAt: string;
  /** When the fire took the key (ISO). */
  since: string;
  /** The schedule-queue job of the fire that took the key: while it is active, the flow is being enqueued. */
  fireJobId: string;
  /** The calendar day, in the job's time zone, its spend counts against (YYYY-MM-DD). */
  day: string;
}

/** What a scheduled run needs at its end to settle its spend and write its history. */
export interface ScheduledRun {
  job: string;
  outputRoot: string;
  fireAt: string;
  day: string;
}

/** What a fire's claim found. */
export type JobRunClaim =
  | { kind: "claimed" }
  /** Another run holds the key; `raw` is the key's value, for a compare-and-set take-over. */
  | { kind: "held"; holder: JobRunHolder | undefined; raw: string }
  /** This run (its folder) already had its turn today: a second fire of the same minute. */
  | { kind: "fired" }
  /** The run's most does not fit in what is left of the day's `per_day`. */
  | { kind: "over"; spentUsd: number };

/** Keys of a job's guard, all under the queues' prefix. */
export const guardKeys = {
  /** Held (SET NX) by the job's run in flight, from its fire until its assemble job ends. */
  running: (prefix: string, job: string) => `${prefix}:job-running:${job}`,
  /** Hash of a job's spend on one day: `reserved:<runId>` while a run goes, `spent:<runId>` once settled. */
  day: (prefix: string, job: string, day: string) => `${prefix}:job-day:${job}:${day}`,
  /** Which job and day a run belongs to, for its assemble job (absent for unscheduled runs). */
  run: (prefix: string, runId: string) => `${prefix}:run-schedule:${runId}`,
};

// Day hashes outlive their day (a run may end after midnight); a week is plenty.
const KEEP_S = 7 * 86_400;

/**
 * One step for a fire: take the job's run key (free, or still holding `ARGV[5]`, a stale value
 * the caller saw: compare-and-set), unless this run already fired today, and reserve the run's
 * most against the day's `per_day` (`ARGV[4]`, empty for none) counting every run of the day at
 * its settled spend or, in flight, its reservation.
 */
const CLAIM = `
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[5] then return {'held', cur} end
if redis.call('HEXISTS', KEYS[2], 'reserved:' .. ARGV[2]) == 1 or redis.call('HEXISTS', KEYS[2], 'spent:' .. ARGV[2]) == 1 then
  return {'fired', ''}
end
if ARGV[4] ~= '' then
  local sum = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[2])) do sum = sum + tonumber(v) end
  if sum + tonumber(ARGV[3]) > tonumber(ARGV[4]) then return {'over', tostring(sum)} end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'reserved:' .. ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[6])
redis.call('SET', KEYS[3], ARGV[7], 'EX', ARGV[6])
return {'claimed', ''}`;

/** Replaces a run's reservation with what it spent (`ARGV[3]` = '1': only while it still holds one). */
const SETTLE = `
if ARGV[3] == '1' and redis.call('HEXISTS', KEYS[1], 'reserved:' .. ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[1], 'reserved:' .. ARGV[1])
redis.call('HSET', KEYS[1], 'spent:' .. ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1`;

/** Frees the job's run key if this run (`ARGV[1]`) still holds it; a newer holder keeps it. */
const RELEASE = `
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local ok, h = pcall(cjson.decode, cur)
if not ok or type(h) ~= 'table' or h.runId ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1`;

/** Undoes a claim whose flow could not be enqueued: the key (if still ours) and the reservation. */
const DROP = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('HDEL', KEYS[2], 'reserved:' .. ARGV[2])
redis.call('DEL', KEYS[3])
return 1`;

function parseHolder(raw: string): JobRunHolder | undefined {
  try {
    const h = JSON.parse(raw) as JobRunHolder;
    return typeof h?.runId === "string" ? h : undefined;
  } catch {
    return undefined;
  }
}

/** Options of `claimJobRun`. */
export interface ClaimOptions {
  job: string;
  outputRoot: string;
  holder: JobRunHolder;
  /** The most the run may spend: its per-run budget, else its estimate. */
  reserveUsd: number;
  perDayUsd?: number;
  /** A value of the key the caller found stale: taken over only if the key still holds exactly it. */
  staleValue?: string;
}

/**
 * Claims a job's next run for one fire, atomically across workers: the run key (no two runs of a
 * job in flight anywhere) and the run's reservation against the day's `per_day`.
 */
export async function claimJobRun(
  redis: Redis,
  prefix: string,
  o: ClaimOptions,
): Promise<JobRunClaim> {
  const { holder } = o;
  const run: ScheduledRun = {
    job: o.job,
    outputRoot: o.outputRoot,
    fireAt: holder.fireAt,
    day: holder.day,
  };
  const [kind, value] = (await redis.eval(
    CLAIM,
    3,
    guardKeys.running(prefix, o.job),
    guardKeys.day(prefix, o.job, holder.day),
    guardKeys.run(prefix, holder.runId),
    JSON.stringify(holder),
    holder.runId,
    micros(o.reserveUsd),
    o.perDayUsd === undefined ? "" : micros(o.perDayUsd),
    o.staleValue ?? "",
    KEEP_S,
    JSON.stringify(run),
  )) as [string, string];
  if (kind === "held") return { kind, holder: parseHolder(value), raw: value };
  if (kind === "over") return { kind, spentUsd: Number(value) / 1e6 };
  return { kind: kind as "claimed" | "fired" };
}

/** Gives back a claim whose run was never enqueued (its reservation too). */
export async function dropJobRunClaim(
  redis: Redis,
  prefix: string,
  job: string,
  holder: JobRunHolder,
): Promise<void> {
  await redis.eval(
    DROP,
    3,
    guardKeys.running(prefix, job),
    guardKeys.day(prefix, job, holder.day),
    guardKeys.run(prefix, holder.runId),
    JSON.stringify(holder),
    holder.runId,
  );
}

/** The scheduled job a run belongs to; undefined for a run enqueued by hand. */
export async function scheduledRun(
  redis: Redis,
  prefix: string,
  runId: string,
): Promise<ScheduledRun | undefined> {
  const raw = await redis.get(guardKeys.run(prefix, runId));
  return raw ? (JSON.parse(raw) as ScheduledRun) : undefined;
}

/**
 * Replaces a run's reservation on its day with what it spent. `onlyIfReserved`: leave a run
 * already settled alone (a stale run settled from its journal must not undo its own end).
 * True when it settled.
 */
export async function settleJobRun(
  redis: Redis,
  prefix: string,
  s: { job: string; day: string; runId: string; spentUsd: number; onlyIfReserved?: boolean },
): Promise<boolean> {
  return (
    (await redis.eval(
      SETTLE,
      1,
      guardKeys.day(prefix, s.job, s.day),
      s.runId,
      micros(s.spentUsd),
      s.onlyIfReserved ? "1" : "0",
      KEEP_S,
    )) === 1
  );
}

/** Frees the job's run key at its run's end (a key some newer run took stays). */
export async function releaseJobRun(
  redis: Redis,
  prefix: string,
  job: string,
  runId: string,
): Promise<boolean> {
  const freed = (await redis.eval(RELEASE, 1, guardKeys.running(prefix, job), runId)) === 1;
  await redis.del(guardKeys.run(prefix, runId));
  return freed;
}

/** Dollars a job has spent or holds on one day (its time zone): settled runs plus runs in flight. */
export async function jobDaySpendUsd(
  redis: Redis,
  prefix: string,
  job: string,
  day: string,
): Promise<number> {
  const values = await redis.hvals(guardKeys.day(prefix, job, day));
  return values.reduce((sum, v) => sum + Number(v), 0) / 1e6;
}
