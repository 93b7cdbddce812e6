import type { Redis } from "ioredis";
import { BudgetError } from "@hailuo/runner";

/**
 * Reserves `ARGV[1]` micro-dollars for generation `ARGV[2]` against a run's budget if it has room,
 * atomically: every worker on every machine asks the same hash, so two can never both take the
 * last room. Each generation's reservations are counted (`n:<key>`), so only what was reserved
 * can be given back. 1 reserved (or the run has no budget), 0 no room, -1 the run has a budget
 * (`ARGV[3]` = 1) but its hash is gone (evicted, a Redis restarted without persistence).
 */
const RESERVE = `
local limit = redis.call('HGET', KEYS[1], 'limit')
if not limit then
  if ARGV[3] == '1' then return -1 end
  return 1
end
local committed = tonumber(redis.call('HGET', KEYS[1], 'committed') or '0')
if committed + tonumber(ARGV[1]) > tonumber(limit) then return 0 end
redis.call('HINCRBY', KEYS[1], 'committed', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'n:' .. ARGV[2], 1)
return 1`;

/** Gives back one reservation of generation `ARGV[2]`; nothing when it holds none (a request re-attached from another enqueue). */
const RELEASE = `
local n = tonumber(redis.call('HGET', KEYS[1], 'n:' .. ARGV[2]) or '0')
if n <= 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'n:' .. ARGV[2], -1)
return redis.call('HINCRBY', KEYS[1], 'committed', -tonumber(ARGV[1]))`;

/** USD as integer micro-dollars: Redis adds integers exactly. */
export const micros = (usd: number) => Math.round(usd * 1e6);

// A run whose assemble never comes (cancelled, abandoned) leaves its budget; it goes after this.
const BUDGET_TTL_S = 30 * 24 * 3600;

/** One run's budget as the runner's item step asks it: reserve before a submit, release what was not billed. */
export interface RunBudget {
  reserve(usd: number, key: string): Promise<boolean>;
  release(usd: number, key: string): Promise<void>;
}

/** Where a run's shared budget lives. */
export function budgetKey(prefix: string, runId: string): string {
  return `${prefix}:run-budget:${runId}`;
}

/**
 * Sets a distributed run's budget. Spend already reserved by an enqueue of the same run that is
 * still going is kept (enqueueing twice must not free its room); only the limit is replaced.
 */
export async function openRunBudget(
  redis: Redis,
  prefix: string,
  runId: string,
  limitUsd: number,
): Promise<void> {
  const key = budgetKey(prefix, runId);
  await redis
    .multi()
    .hset(key, "limit", micros(limitUsd))
    .hsetnx(key, "committed", 0)
    .expire(key, BUDGET_TTL_S)
    .exec();
}

/** Removes a finished run's budget: a later enqueue of the folder starts with its own. */
export async function closeRunBudget(redis: Redis, prefix: string, runId: string): Promise<void> {
  await redis.del(budgetKey(prefix, runId));
}

/**
 * The budget of one run, shared by every worker through Redis (a run enqueued without one always
 * has room). `required`: run.json says the run has a budget, so a missing hash refuses the submit.
 */
export function runBudget(
  redis: Redis,
  prefix: string,
  runId: string,
  required = false,
): RunBudget {
  const key = budgetKey(prefix, runId);
  return {
    reserve: async (usd, item) => {
      const answer = await redis.eval(RESERVE, 1, key, micros(usd), item, required ? "1" : "0");
      if (answer === -1)
        throw new BudgetError(
          `the run's budget is no longer in Redis (${key}: evicted, or Redis restarted without persistence); not submitted. Enqueue the run again to set it`,
        );
      return answer === 1;
    },
    release: async (usd, item) => {
      await redis.eval(RELEASE, 1, key, micros(usd), item);
    },
  };
}
