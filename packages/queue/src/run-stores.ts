import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Redis } from "ioredis";
import { HailuoError, removeDeadPidDirs } from "@hailuo/shared";
import { openRedis } from "./connection.js";
import {
  createLocalStore,
  createRedisS3Store,
  isBucketUrl,
  runIdOf,
  s3ClientFromEnv,
  type RunStore,
  type S3ClientLike,
} from "@hailuo/store";

/** A run's address as jobs carry it: an absolute folder, or an `s3://` address as given. */
export function runAddress(runDirOrUrl: string): string {
  return isBucketUrl(runDirOrUrl) ? runDirOrUrl.replace(/\/+$/, "") : resolve(runDirOrUrl);
}

/** Opens the stores of the runs a process works on, one per address, and cleans their scratch. */
export interface RunStores {
  /** The store of the run at `address` (a folder, or a bucket whose records live in this Redis). */
  of(address: string): RunStore;
  /** Drops a run's store and removes its scratch folder (its files are in the bucket). */
  forget(address: string): Promise<void>;
  /** Removes every scratch folder this process made. */
  close(): Promise<void>;
}

/**
 * Stores for a process that shares nothing with its peers but Redis and the bucket: a bucket
 * run's files are made in `<tmp>/hailuo-scratch-<pid>-<random>/<run id>`, which goes when the run is done
 * or the process closes; folders left by dead processes are removed at start.
 */
export function createRunStores(options: {
  redis: Redis;
  /** Prefix of the store's Redis keys (the queue's). */
  keyPrefix: string;
  /** @default the AWS SDK's standard environment */
  s3?: S3ClientLike;
  /** @default the OS temp folder */
  tempRoot?: string;
}): RunStores {
  // One folder per instance: a process may hold several (an enqueue beside a worker in tests).
  const root = join(
    options.tempRoot ?? tmpdir(),
    `hailuo-scratch-${process.pid}-${randomBytes(4).toString("hex")}`,
  );
  const stores = new Map<string, RunStore>();
  let s3: S3ClientLike | Promise<S3ClientLike> | undefined = options.s3;
  void removeDeadPidDirs(options.tempRoot ?? tmpdir(), (name) =>
    Number(/^hailuo-scratch-(\d+)-/.exec(name)?.[1]),
  );
  return {
    of(given) {
      // One store per run, however its address was written (a trailing slash, a relative folder).
      const address = runAddress(given);
      let store = stores.get(address);
      if (store) return store;
      if (isBucketUrl(address)) {
        const scratchDir = join(root, runIdOf(address));
        store = createRedisS3Store({
          url: address,
          redis: options.redis,
          s3: (s3 ??= s3ClientFromEnv()),
          keyPrefix: options.keyPrefix,
          scratchDir,
        });
      } else store = createLocalStore(address);
      stores.set(address, store);
      return store;
    },
    async forget(given) {
      const address = runAddress(given);
      const store = stores.get(address);
      stores.delete(address);
      if (store && store.kind !== "local") await rm(store.dir, { recursive: true, force: true });
    },
    async close() {
      stores.clear();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Makes a bucket run's scratch folder (stores write into it without creating it first). */
export async function scratchReady(store: RunStore): Promise<void> {
  await mkdir(join(store.dir, "clips"), { recursive: true });
}

/**
 * Opens one run's store for a command: a folder needs nothing else; a bucket needs the Redis its
 * records live in (`redisUrl`, with the queue's key prefix). `close` lets go of both.
 */
export async function openRunStore(
  address: string,
  conn: { redisUrl?: string; prefix?: string },
): Promise<{ store: RunStore; close: () => Promise<void> }> {
  if (!isBucketUrl(address))
    return { store: createLocalStore(resolve(address)), close: async () => {} };
  if (!conn.redisUrl)
    throw new HailuoError(
      "usage",
      `${address} keeps its records in Redis: pass --redis URL (or set REDIS_URL)`,
      { retryable: false },
    );
  const redis = await openRedis(conn.redisUrl);
  const stores = createRunStores({ redis, keyPrefix: conn.prefix ?? "hailuo" });
  return {
    store: stores.of(runAddress(address)),
    async close() {
      await stores.close();
      redis.disconnect();
    },
  };
}
