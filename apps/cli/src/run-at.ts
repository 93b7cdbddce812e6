import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { readRunReport, type RunAt, type RunStore } from "@hailuo/runner";
import { createLocalStore, isBucketUrl } from "@hailuo/store";

/** Where a bucket run's records live: `--redis`, else `REDIS_URL`. */
export interface RunAtOptions {
  redis?: string;
  prefix?: string;
}

/**
 * Opens a run given by folder or `s3://` address (a bucket needs Redis: `--redis` or
 * `REDIS_URL`). The queue package (BullMQ, Redis, the AWS SDK) loads only for a bucket. `run` is
 * what the runner's functions take: a folder by its path (their messages name it as the user
 * sees it), a bucket run by its store.
 */
export async function openRunAt(
  address: string,
  opts: RunAtOptions,
): Promise<{ store: RunStore; run: RunAt; close: () => Promise<void> }> {
  if (!isBucketUrl(address)) {
    const dir = resolve(address);
    return { store: createLocalStore(dir), run: dir, close: async () => {} };
  }
  const { openRunStore } = await import("@hailuo/queue");
  const opened = await openRunStore(address, {
    redisUrl: opts.redis ?? process.env.REDIS_URL,
    prefix: opts.prefix,
  });
  return { ...opened, run: opened.store };
}

/**
 * Runs a folder-based media command on a run: a folder as it is; a bucket run brought into a
 * scratch folder first (see `onStoreFolder`). Commands that submit never run this way: their
 * records must reach the store as they happen.
 */
export async function onRunFolder<T>(
  address: string,
  opts: RunAtOptions,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  if (!isBucketUrl(address)) return fn(resolve(address));
  const { store, close } = await openRunAt(address, opts);
  try {
    return await onStoreFolder(store, fn);
  } finally {
    await close();
  }
}

/**
 * Runs a folder-based media command in a bucket run's scratch folder: run.json, picks, the
 * journal and its done clips brought there first (checked against their checksums), then what the
 * command made there uploaded and what it journaled appended to the run's records.
 */
export async function onStoreFolder<T>(
  store: RunStore,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  if (store.kind === "local") return fn(store.dir);
  const { keepOutputs, materializeRun } = await import("@hailuo/queue");
  const report = await readRunReport(store);
  await materializeRun(
    store,
    report.items.flatMap((i) => (i.file ? [i.file] : [])),
  );
  const before = await journalLines(store);
  const result = await fn(store.dir);
  const added = (await journalLines(store)).slice(before.length);
  if (added.length) {
    const log = await store.openLog();
    for (const line of added) await log.appendLine(line);
    await log.close();
  }
  await keepOutputs(store);
  return result;
}

async function journalLines(store: RunStore): Promise<string[]> {
  const text = await readFile(join(store.dir, "journal.jsonl"), "utf8").catch(() => "");
  return text.split("\n").filter((l) => l.trim());
}
