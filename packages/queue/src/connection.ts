import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { HailuoError } from "@hailuo/shared";

/** Queue names; every key lives under the prefix, so tests and tenants never collide. */
export const QUEUES = {
  generate: "hailuo-generate",
  assemble: "hailuo-assemble",
  schedule: "hailuo-schedule",
} as const;

/** Where the queues live. */
export interface QueueConnection {
  /** e.g. redis://127.0.0.1:6379 */
  redisUrl: string;
  /** Key prefix of every queue. @default "hailuo" */
  prefix?: string;
}

/**
 * Opens a Redis connection for BullMQ (which needs `maxRetriesPerRequest: null`). BullMQ does not
 * close connections it was given, so the caller must call `disconnect()`.
 */
export async function openRedis(redisUrl: string): Promise<Redis> {
  const redis = new Redis(redisUrl, {
    maxRetriesPerRequest: null,
    lazyConnect: true,
    connectTimeout: 5000,
  });
  // Without a listener ioredis prints every failed reconnect as an "Unhandled error event" with a stack.
  let lastError: Error | undefined;
  redis.on("error", (error: Error) => (lastError = error));
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    const why = lastError?.message ?? (error as Error).message;
    throw new HailuoError(
      "redis",
      `cannot reach Redis at ${redactUrl(redisUrl)} (${why}); is redis-server running there? (--redis takes redis://host:port)`,
      { retryable: true, cause: error },
    );
  }
  return redis;
}

/** A Redis URL without its password, for messages. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url;
  }
}

/**
 * Deletes every queue (jobs, schedulers, counters) under a prefix, and the keys kept beside them
 * (run budgets, scheduled jobs' run keys and day spend): for tests and for retiring a tenant.
 */
export async function removeAllQueues(conn: QueueConnection): Promise<void> {
  const redis = await openRedis(conn.redisUrl);
  const prefix = conn.prefix ?? "hailuo";
  try {
    for (const name of Object.values(QUEUES)) {
      const q = new Queue(name, { connection: redis, prefix });
      await q.obliterate({ force: true });
      await q.close();
    }
    for (const kind of ["run-budget", "job-running", "job-day", "run-schedule"]) {
      for await (const keys of redis.scanStream({
        match: `${prefix.replace(/[*?[\]\\]/g, "\\$&")}:${kind}:*`,
        count: 500,
      })) {
        if ((keys as string[]).length) await redis.del(...(keys as string[]));
      }
    }
  } finally {
    redis.disconnect();
  }
}
