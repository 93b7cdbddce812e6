import { writeFile, mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  makeTempDir,
  startTestRedis,
  startTestS3,
  waitFor,
  type TestS3Server,
} from "@hailuo/test-utils";
import { createLocalStore } from "./local-store.js";
import { createRedisS3Store, redisKeysOf } from "./redis-s3-store.js";
import type { RunStore } from "./run-store.js";
import { s3ClientFromEnv } from "./store-url.js";

const REDIS = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
let s3server: TestS3Server;
let redis: Redis;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  s3server = await startTestS3();
  redis = new Redis(REDIS);
});
afterAll(async () => {
  for (const c of cleanups) await c();
  redis.disconnect();
  await s3server.close();
});

let n = 0;
const kinds: Record<string, () => Promise<RunStore>> = {
  local: async () => {
    const { dir, cleanup } = await makeTempDir("hailuo-store-");
    cleanups.push(cleanup);
    return createLocalStore(dir);
  },
  "redis+s3": async () => {
    const { dir, cleanup } = await makeTempDir("hailuo-scratch-");
    const url = `s3://${s3server.bucket}/t${process.pid}-${Date.now()}-${n++}/run`;
    const keyPrefix = `hailuo-test-${process.pid}`;
    cleanups.push(cleanup, () =>
      redis.del(
        ...Object.values(redisKeysOf(url, keyPrefix)).filter(
          (k): k is string => typeof k === "string",
        ),
      ),
    );
    return createRedisS3Store({
      url,
      redis,
      s3: s3ClientFromEnv(s3server.env),
      keyPrefix,
      scratchDir: dir,
      leaseMs: 2000,
    });
  },
};

describe.each(Object.keys(kinds))("%s store", (kind) => {
  const open = kinds[kind]!;

  it("reads back appended journal lines in order, and only new ones after a cursor", async () => {
    const store = await open();
    const log = await store.openLog();
    await Promise.all(["a", "b", "c"].map((x, i) => log.appendLine(JSON.stringify({ x, i }))));
    const first = await store.readLog();
    expect(first.lines.map((l) => JSON.parse(l).x).sort()).toEqual(["a", "b", "c"]);
    await log.appendLine('{"x":"d"}');
    const next = await store.readLog(first.cursor);
    expect(next.lines).toEqual(['{"x":"d"}']);
    expect((await store.readLog(next.cursor)).lines).toEqual([]);
    await log.close();
  });

  it("keeps two writers' appends whole", async () => {
    const store = await open();
    const [a, b] = [await store.openLog(), await store.openLog()];
    const long = "y".repeat(5000);
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).appendLine(JSON.stringify({ i, long }))),
    );
    const { lines } = await store.readLog();
    expect(lines).toHaveLength(40);
    expect(new Set(lines.map((l) => JSON.parse(l).i)).size).toBe(40);
    await Promise.all([a.close(), b.close()]);
  });

  it("writes and reads documents; a missing one is undefined", async () => {
    const store = await open();
    expect(await store.readDocument("picks.json")).toBeUndefined();
    await store.writeDocument("run.json", '{"version":2}\n');
    await store.writeDocument("run.json", '{"version":3}\n');
    expect(await store.readDocument("run.json")).toBe('{"version":3}\n');
  });

  it("keeps an artifact made in its folder and brings it back checked", async () => {
    const store = await open();
    await mkdir(join(store.dir, "clips"), { recursive: true });
    const bytes = Buffer.alloc(300_000, 7);
    await writeFile(join(store.dir, "clips", "s1-1.mp4"), bytes);
    const kept = await store.putArtifact("clips/s1-1.mp4");
    expect(kept.bytes).toBe(bytes.length);
    expect(await store.statArtifact("clips/s1-1.mp4")).toMatchObject({ bytes: bytes.length });
    expect(await store.statArtifact("clips/none.mp4")).toBeUndefined();
    expect((await store.listArtifacts("clips/")).map((a) => a.name)).toEqual(["clips/s1-1.mp4"]);
    if (store.kind === "redis+s3") {
      await rm(join(store.dir, "clips"), { recursive: true });
      expect(await store.getArtifact("clips/s1-1.mp4")).toBe(true);
    }
    expect(await readFile(join(store.dir, "clips", "s1-1.mp4"))).toEqual(bytes);
    expect(await store.getArtifact("clips/none.mp4")).toBe(false);
  });

  it("gives ownership to one holder at a time, with a larger token for each", async () => {
    const store = await open();
    expect(await store.owned()).toBe(false);
    const first = await store.acquire({ noWait: true });
    expect(await store.owned()).toBe(true);
    await expect(store.acquire({ noWait: true })).rejects.toMatchObject({ code: "locked" });
    await first.release();
    const second = await store.acquire({ noWait: true });
    expect(second.token).toBeGreaterThanOrEqual(first.token);
    await second.release();
  });
});

describe("redis+s3 store", () => {
  it("replaces a scratch copy whose bytes differ from the bucket's", async () => {
    const store = await kinds["redis+s3"]!();
    await mkdir(join(store.dir, "clips"), { recursive: true });
    const path = join(store.dir, "clips", "a.mp4");
    await writeFile(path, Buffer.alloc(1000, 1));
    await store.putArtifact("clips/a.mp4");
    await writeFile(path, Buffer.alloc(1000, 2));
    expect(await store.getArtifact("clips/a.mp4")).toBe(true);
    expect(await readFile(path)).toEqual(Buffer.alloc(1000, 1));
  });

  it("rides out a bucket answering 503 for a few requests, and names it when it lasts", async () => {
    const store = await kinds["redis+s3"]!();
    await writeFile(join(store.dir, "x.bin"), Buffer.alloc(2000, 3));
    s3server.failNext(2);
    await store.putArtifact("x.bin");
    expect(s3server.failed()).toBeGreaterThanOrEqual(2);
    s3server.failNext(50);
    const error = await store.putArtifact("x.bin").catch((e) => e);
    s3server.failNext(0);
    expect(error).toMatchObject({ code: "store", retryable: true });
    expect(error.message).toContain(`${store.url}/x.bin`);
  });

  it("waits for a dead owner's lease to lapse, then owns the run", async () => {
    const store = await kinds["redis+s3"]!();
    const { lease } = redisKeysOf(store.url, `hailuo-test-${process.pid}`);
    // A killed owner's lease: nobody renews it. It lapses only once the refusal is seen, however
    // slow the machine.
    await redis.set(lease, "killed-owner", "PX", 60_000);
    await expect(store.acquire({ noWait: true })).rejects.toMatchObject({ code: "locked" });
    await redis.pexpire(lease, 400);
    const owned = await store.acquire();
    expect(await redis.get(lease)).not.toBe("killed-owner");
    await owned.release();
    expect(await store.owned()).toBe(false);
  });

  it("tells the holder when another process holds its lease, so it stops writing", async () => {
    const store = await kinds["redis+s3"]!();
    const { lease } = redisKeysOf(store.url, `hailuo-test-${process.pid}`);
    const lost: Error[] = [];
    const owned = await store.acquire({ noWait: true, onLost: (e) => lost.push(e) });
    await redis.set(lease, "another-owner", "PX", 60_000);
    await waitFor(() => lost.length > 0);
    expect(lost[0]).toMatchObject({ code: "store", retryable: false });
    expect(lost[0]!.message).toContain(store.url);
    expect(lost).toHaveLength(1);
    // Releasing a lost lease leaves the new owner's alone.
    await owned.release();
    expect(await redis.get(lease)).toBe("another-owner");
  });

  it("refuses a journal append by a holder that lost its lease: it keeps only what was held", async () => {
    const store = await kinds["redis+s3"]!();
    const { lease } = redisKeysOf(store.url, `hailuo-test-${process.pid}`);
    const owned = await store.acquire({ noWait: true });
    const log = await store.openLog();
    await log.appendLine('{"t":"mine"}');
    // Another process takes the run (this one was paused past its lease).
    await redis.set(lease, "next-owner", "PX", 60_000);
    await expect(log.appendLine('{"t":"late"}')).rejects.toMatchObject({
      code: "store",
      retryable: false,
    });
    expect((await store.readLog()).lines).toEqual(['{"t":"mine"}']);
    await owned.release();
  });

  it("confirms a held lease, renewing it, and refuses once another process holds it", async () => {
    const store = await kinds["redis+s3"]!();
    const { lease } = redisKeysOf(store.url, `hailuo-test-${process.pid}`);
    const lost: Error[] = [];
    const owned = await store.acquire({ noWait: true, onLost: (e) => lost.push(e) });
    // A time left other than the lease's (2 s), longer so that it cannot run out before the
    // confirm however slow the machine: only a renewal sets it back to the lease.
    await redis.pexpire(lease, 60_000);
    await owned.confirm();
    const left = await redis.pttl(lease);
    expect(left > 0 && left <= 2000, `renewed to the whole lease (${left} ms left)`).toBe(true);
    // Taken before this holder's renewal timer could notice: the confirm itself finds out.
    await redis.set(lease, "next-owner", "PX", 60_000);
    await expect(owned.confirm()).rejects.toMatchObject({ code: "store", retryable: false });
    expect(lost, "the holder is told once").toHaveLength(1);
    await expect(owned.confirm()).rejects.toMatchObject({ code: "store" });
    await owned.release();
    expect(await redis.get(lease)).toBe("next-owner");
  });

  it("tells a holder cut off from Redis, once, when its lease has run out", async () => {
    const server = await startTestRedis();
    // As the CLI connects: commands wait for a reconnect instead of failing.
    const cut = new Redis(server.url, { maxRetriesPerRequest: null });
    cut.on("error", () => {});
    const { dir, cleanup } = await makeTempDir("hailuo-scratch-");
    try {
      const store = createRedisS3Store({
        url: `s3://${s3server.bucket}/cut-${process.pid}`,
        redis: cut,
        s3: s3ClientFromEnv(s3server.env),
        scratchDir: dir,
        leaseMs: 600,
      });
      const lost: Error[] = [];
      const owned = await store.acquire({ noWait: true, onLost: (e) => lost.push(e) });
      await server.close();
      await waitFor(() => lost.length > 0);
      expect(lost[0]!.message).toContain("did not answer");
      // Later ticks say nothing more; a release with Redis gone still returns.
      await new Promise((r) => setTimeout(r, 700));
      expect(lost).toHaveLength(1);
      await owned.release();
    } finally {
      cut.disconnect();
      await cleanup();
    }
  });
});
