import { createHash, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { s3Sdk, withSdk, type S3Sdk } from "./aws-sdk.js";
import type { Redis } from "ioredis";
import { HailuoError } from "@hailuo/shared";
import { RunLockedError } from "./local-store.js";
import type { ArtifactInfo, Ownership, RunDocument, RunStore, S3ClientLike } from "./run-store.js";
import { parseStoreUrl, runIdOf } from "./store-url.js";

/** What `createRedisS3Store` needs. */
export interface RedisS3StoreOptions {
  /** `s3://bucket/prefix`: where the run's artifacts go. */
  url: string;
  /** The connection records, documents and ownership live on (not closed by the store). */
  redis: Redis;
  /** The bucket's client (an AWS SDK v3 `S3Client`), or a promise of it (see `s3ClientFromEnv`; not closed by the store). */
  s3: S3ClientLike | Promise<S3ClientLike>;
  /** Prefix of the store's Redis keys. @default "hailuo" */
  keyPrefix?: string;
  /** The local folder files are made in and brought to (the caller cleans it). */
  scratchDir: string;
  /** How long ownership lasts without renewal: a killed owner's run is free after it. @default 15000 */
  leaseMs?: number;
}

/** The bucket or Redis could not take or give what was asked; the work can be retried. */
export class StoreError extends HailuoError {
  constructor(
    message: string,
    /** `s3://bucket/key` or the Redis key the operation was about. */
    readonly where: string,
    options: { retryable: boolean; cause?: unknown },
  ) {
    super("store", message, options);
  }
}

// Renews or releases a lease only while it is still ours (compare-and-set on the owner's id).
const RENEW = `if redis.call("get", KEYS[1]) == ARGV[1] then
  return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call("get", KEYS[1]) == ARGV[1] then
  return redis.call("del", KEYS[1]) else return 0 end`;
// An owner's append lands only while the lease is still its own: a process that lost the run
// (paused, cut off) never writes into the next owner's journal.
const FENCED_XADD = `if redis.call("get", KEYS[2]) ~= ARGV[1] then return 0 end
  redis.call("xadd", KEYS[1], "*", "l", ARGV[2]) return 1`;

/**
 * A run kept in Redis and an S3-compatible bucket: the journal is a Redis stream (XADD is atomic
 * across workers), run.json and picks.json are Redis strings, ownership is a Redis lease with a
 * fencing token, and artifacts are objects under the URL's prefix with their SHA-256 in the
 * object's metadata, checked on every download. Redis must persist (AOF): it holds the ledger.
 */
export function createRedisS3Store(options: RedisS3StoreOptions): RunStore {
  const { redis, scratchDir, leaseMs = 15_000 } = options;
  // The SDK loads on the first bucket operation: a folder run never pays its start-up.
  const client = Promise.resolve(options.s3);
  const send = async <T>(command: (sdk: S3Sdk) => object): Promise<T> =>
    (await client).send(command(await s3Sdk()) as never) as Promise<T>;
  type S3ServiceException = { name?: string; $metadata?: { httpStatusCode?: number } };
  const { bucket, prefix } = parseStoreUrl(options.url);
  const url = `s3://${bucket}${prefix ? `/${prefix}` : ""}`;
  const keys = redisKeysOf(url, options.keyPrefix);
  const objectKey = (name: string) => (prefix ? `${prefix}/${name}` : name);
  const where = (name: string) => `s3://${bucket}/${objectKey(name)}`;
  const fail = (what: string, name: string, error: unknown): StoreError => {
    const status = (error as S3ServiceException)?.$metadata?.httpStatusCode;
    // Throttling, 5xx and network errors pass; a refusal (403, a missing bucket) does not.
    const retryable = status === undefined || status >= 500 || status === 429;
    return new StoreError(
      `${what} ${where(name)} failed: ${(error as Error)?.message ?? error}`,
      where(name),
      { retryable, cause: error },
    );
  };
  const redisCall = async <T>(what: string, key: string, call: () => Promise<T>) => {
    try {
      return await call();
    } catch (error) {
      throw new StoreError(`${what} (${key}) failed: ${(error as Error).message}`, key, {
        retryable: true,
        cause: error,
      });
    }
  };
  // The lease this store holds (its owner id), or held and lost: its appends are fenced by it,
  // and refused once it is lost, until the run is given up or taken again.
  let fence: { owner: string; lost: boolean } | undefined;
  /** What a holder that lost its lease is told when it tries to act on the run. */
  const leaseLost = (refused: string) =>
    new StoreError(
      `${url} is owned by another process now (this one lost its lease); ${refused}`,
      keys.lease,
      { retryable: false },
    );
  const head = async (name: string): Promise<ArtifactInfo | undefined> => {
    try {
      const h = await send<{
        ContentLength?: number;
        Metadata?: Record<string, string>;
        LastModified?: Date;
      }>((sdk) => new sdk.HeadObjectCommand({ Bucket: bucket, Key: objectKey(name) }));
      return {
        name,
        bytes: h.ContentLength ?? 0,
        sha256: h.Metadata?.sha256,
        modifiedMs: h.LastModified?.getTime(),
      };
    } catch (error) {
      if ((error as S3ServiceException)?.name === "NotFound") return undefined;
      throw fail("looking up", name, error);
    }
  };

  return {
    kind: "redis+s3",
    url,
    dir: scratchDir,
    async openLog() {
      return {
        async appendLine(line) {
          const held = fence;
          const refused = () => leaseLost("nothing more is written to its journal");
          if (held?.lost) throw refused();
          if (held === undefined) {
            await redisCall("appending to the journal", keys.log, () =>
              redis.xadd(keys.log, "*", "l", line),
            );
            return;
          }
          const landed = await redisCall("appending to the journal", keys.log, () =>
            redis.eval(FENCED_XADD, 2, keys.log, keys.lease, held.owner, line),
          );
          if (landed !== 1) throw refused();
        },
        async close() {},
      };
    },
    async readLog(cursor) {
      // Exclusive range after the last id read ("(" needs Redis 6.2).
      const entries = await redisCall("reading the journal", keys.log, () =>
        redis.xrange(keys.log, cursor ? `(${cursor}` : "-", "+"),
      );
      return {
        lines: entries.map(([, fields]) => fields[1] ?? ""),
        cursor: entries.at(-1)?.[0] ?? cursor ?? "0-0",
      };
    },
    async readDocument(name: RunDocument) {
      const text = await redisCall(`reading ${name}`, keys.doc(name), () =>
        redis.get(keys.doc(name)),
      );
      if (text !== null) return text;
      // Gone from Redis (a restart without persistence, another Redis, keys removed): the
      // bucket's copy still says what the run was, so its paid clips are recognised, not paid again.
      try {
        const got = await send<{ Body?: { transformToString(): Promise<string> } }>(
          (sdk) => new sdk.GetObjectCommand({ Bucket: bucket, Key: objectKey(name) }),
        );
        return await got.Body?.transformToString();
      } catch (error) {
        if ((error as S3ServiceException)?.name === "NoSuchKey") return undefined;
        throw fail("reading", name, error);
      }
    },
    async writeDocument(name, text) {
      await redisCall(`writing ${name}`, keys.doc(name), () => redis.set(keys.doc(name), text));
      // Kept beside the artifacts too, so the bucket alone says what the run was.
      await s3Put(await client, bucket, objectKey(name), Buffer.from(text), undefined).catch(
        (e) => {
          throw fail("writing", name, e);
        },
      );
    },
    async putArtifact(name) {
      const path = join(scratchDir, ...name.split("/"));
      const st = await stat(path).catch(() => undefined);
      if (!st?.isFile())
        throw new HailuoError("unwritable", `${path} is not there to upload`, {
          retryable: false,
        });
      const sha256 = await sha256File(path);
      try {
        await s3Put(await client, bucket, objectKey(name), createReadStream(path), { sha256 });
      } catch (error) {
        throw fail("uploading", name, error);
      }
      // What the bucket says it holds, not what we meant to send.
      const stored = await head(name);
      if (stored?.bytes !== st.size || stored.sha256 !== sha256)
        throw new StoreError(
          `${where(name)} holds ${stored?.bytes ?? 0} bytes after an upload of ${st.size}`,
          where(name),
          { retryable: true },
        );
      return stored;
    },
    async getArtifact(name) {
      const path = join(scratchDir, ...name.split("/"));
      const stored = await head(name);
      if (!stored) return false;
      const local = await stat(path).catch(() => undefined);
      if (local?.isFile() && local.size === stored.bytes) {
        if (!stored.sha256 || (await sha256File(path)) === stored.sha256) return true;
      }
      await mkdir(dirname(path), { recursive: true });
      const part = `${path}.${randomUUID().slice(0, 8)}.part`;
      try {
        const got = await send<{ Body?: unknown }>(
          (sdk) => new sdk.GetObjectCommand({ Bucket: bucket, Key: objectKey(name) }),
        );
        const hash = createHash("sha256");
        const tap = new Transform({
          transform(chunk, _enc, done) {
            hash.update(chunk);
            done(null, chunk);
          },
        });
        await pipeline(got.Body as Readable, tap, createWriteStream(part));
        const sha256 = hash.digest("hex");
        if (stored.sha256 && sha256 !== stored.sha256)
          throw new StoreError(`${where(name)} arrived with another checksum`, where(name), {
            retryable: true,
          });
        await rename(part, path);
        return true;
      } catch (error) {
        await rm(part, { force: true });
        throw error instanceof StoreError ? error : fail("downloading", name, error);
      }
    },
    statArtifact: head,
    async listArtifacts(listPrefix) {
      const out: ArtifactInfo[] = [];
      const base = objectKey("");
      let token: string | undefined;
      try {
        do {
          const page = await send<{
            Contents?: { Key?: string; Size?: number; LastModified?: Date }[];
            IsTruncated?: boolean;
            NextContinuationToken?: string;
          }>(
            (sdk) =>
              new sdk.ListObjectsV2Command({
                Bucket: bucket,
                Prefix: objectKey(listPrefix),
                ContinuationToken: token,
              }),
          );
          for (const o of page.Contents ?? [])
            out.push({
              name: o.Key!.slice(base.length),
              bytes: o.Size ?? 0,
              modifiedMs: o.LastModified?.getTime(),
            });
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
      } catch (error) {
        throw fail("listing", listPrefix, error);
      }
      return out.sort((a, b) => a.name.localeCompare(b.name));
    },
    async acquire(options = {}): Promise<Ownership> {
      const owner = randomUUID();
      const take = () =>
        redisCall("taking the run", keys.lease, () =>
          redis.set(keys.lease, owner, "PX", leaseMs, "NX"),
        );
      // A dead owner's lease lapses within leaseMs; a live owner renews it, so waiting longer is moot.
      const deadline = Date.now() + (options.noWait ? 0 : leaseMs + 1000);
      while ((await take()) !== "OK") {
        const left = await redis.pttl(keys.lease).catch(() => 1000);
        if (Date.now() + Math.max(left, 0) > deadline)
          throw new RunLockedError(
            `${url} is owned by another hailuo process (its lease in Redis is live); wait for it to finish or stop it first`,
          );
        await sleep(Math.min(Math.max(left, 50), 1000));
      }
      const token = await redisCall("taking the run", keys.fence, () => redis.incr(keys.fence));
      const held = { owner, lost: false };
      fence = held;
      let renewedAt = Date.now();
      let renewing = false;
      let over = false;
      /** Takes a renewal's answer: the lease kept (true), or lost to another owner. */
      const renewed = (kept: unknown): boolean => {
        if (over) return false;
        if (kept === 1) renewedAt = Date.now();
        else lost("another owner holds it");
        return kept === 1;
      };
      const lost = (why: string) => {
        if (over) return;
        over = true;
        held.lost = true;
        clearInterval(timer);
        options.onLost?.(
          new StoreError(`lost the lease on ${url}: ${why}`, keys.lease, { retryable: false }),
        );
      };
      const timer = setInterval(
        () => {
          // A renewal still unanswered (Redis cut off: a client may queue commands for as long as
          // it reconnects) is the lease running out: past its lifetime another may own the run.
          if (renewing) {
            if (Date.now() - renewedAt > leaseMs) lost("Redis did not answer in time to renew it");
            return;
          }
          renewing = true;
          redis
            .eval(RENEW, 1, keys.lease, owner, String(leaseMs))
            .then(renewed, (error: Error) => {
              if (Date.now() - renewedAt > leaseMs) lost(`Redis unreachable (${error.message})`);
            })
            .finally(() => (renewing = false));
        },
        Math.floor(leaseMs / 3),
      );
      timer.unref();
      return {
        token,
        async confirm() {
          const kept =
            !over &&
            (await redisCall("confirming the run's lease", keys.lease, () =>
              redis.eval(RENEW, 1, keys.lease, owner, String(leaseMs)),
            ));
          if (!renewed(kept)) throw leaseLost("nothing more is done for it");
        },
        async release() {
          over = true;
          clearInterval(timer);
          if (fence === held) fence = undefined;
          // Bounded: with Redis gone the lease lapses by itself, and the run must still end.
          await Promise.race([
            redis.eval(RELEASE, 1, keys.lease, owner).catch(() => {}),
            sleep(Math.min(leaseMs, 2000), undefined, { ref: false }),
          ]);
        },
      };
    },
    async owned() {
      return (
        (await redisCall("looking up the run's owner", keys.lease, () =>
          redis.exists(keys.lease),
        )) === 1
      );
    },
    async close() {},
  };
}

/** The Redis keys of the run stored at `url`. */
export function redisKeysOf(url: string, keyPrefix = "hailuo") {
  const base = `${keyPrefix}:store:${runIdOf(url)}`;
  return {
    log: `${base}:log`,
    lease: `${base}:lease`,
    fence: `${base}:fence`,
    doc: (name: RunDocument) => `${base}:${name}`,
  };
}

async function s3Put(
  s3: S3ClientLike,
  bucket: string,
  key: string,
  body: Buffer | Readable,
  metadata: Record<string, string> | undefined,
): Promise<void> {
  // lib-storage: one PUT for small bodies, a multipart upload (parts retried) for large ones.
  const { Upload } = await withSdk(() => import("@aws-sdk/lib-storage"));
  const upload = new Upload({
    // An S3ClientLike is an S3Client (see its type): typed loosely so the SDK stays optional.
    client: s3 as never,
    params: { Bucket: bucket, Key: key, Body: body, Metadata: metadata },
    queueSize: 2,
    leavePartsOnError: false,
  });
  await upload.done();
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return hash.digest("hex");
}
