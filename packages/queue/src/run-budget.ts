import type { Redis } from "ioredis";

/**
 * Reserves `ARGV[1]` micro-dollars against a run's budget if it has room, atomically: every
 * worker on every machine asks the same hash, so two can never both take the last room.
 * 1 reserved (or the run has no budget), 0 no room.
 */
const RESERVE = `
local limit = redis.call('HGET', KEYS[1], 'limit')
if not limit then return 1 end
local committed = tonumber(redis.call('HGET', KEYS[1], 'committed') or '0')
if committed + tonumber(ARGV[1]) > tonumber(limit) then return 0 end
redis.call('HINCRBY', KEYS[1], 'committed', ARGV[1])
return 1`;

/** Gives a reservation back (a submit refused, a generation that ended without a video). */
const RELEASE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], 'committed', -tonumber(ARGV[1]))`;

const micros = (usd: number) => Math.round(usd * 1e6);

/** One run's budget as the runner's item step asks it: reserve before a submit, release what was not billed. */
export interface RunBudget {
  reserve(usd: number): Promise<boolean>;
  release(usd: number): Promise<void>;
}

/** Where a run's shared budget lives. */
export function budgetKey(prefix: string, runId: string): string {
  return `${prefix}:run-budget:${runId}`;
}

/**
 * Sets a distributed run's budget. Spend already reserved by an enqueue of the same run that is
 * still going is kept (enqueueing twice must not free its room); only the limit is replaced.
 */
export async function openRunBudget(redis: Redis, prefix: string, runId: string, limitUsd: number): Promise<void> {
  const key = budgetKey(prefix, runId);
  await redis.multi().hset(key, "limit", micros(limitUsd)).hsetnx(key, "committed", 0).exec();
}

/** Removes a finished run's budget: a later enqueue of the folder starts with its own. */
export async function closeRunBudget(redis: Redis, prefix: string, runId: string): Promise<void> {
  await redis.del(budgetKey(prefix, runId));
}

/** The budget of one run, shared by every worker through Redis (a run enqueued without one always has room). */
export function runBudget(redis: Redis, prefix: string, runId: string): RunBudget {
  const key = budgetKey(prefix, runId);
  return {
    reserve: async (usd) => (await redis.eval(RESERVE, 1, key, micros(usd))) === 1,
    release: async (usd) => {
      await redis.eval(RELEASE, 1, key, micros(usd));
    },
  };
}
