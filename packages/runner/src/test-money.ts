import { rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, expect } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import { inputHash, type Emulator, type EmulatorOptions } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import {
  createLocalStore,
  createRedisS3Store,
  redisKeysOf,
  s3ClientFromEnv,
  type RunStore,
} from "@hailuo/store";
import {
  decodeErrors,
  makeTempDir,
  startTestEmulator,
  startTestS3,
  type TestS3Server,
} from "@hailuo/test-utils";
import { readRunFileText } from "./run-folder.js";
import { planRun, readRunReport, type RunAt, type RunOptions, type RunReport } from "./index.js";

/** A storyboard of `n` one-take scenes whose prompts start with `name`. */
export const board = (name: string, n: number, extra = "") =>
  parseManifest(
    `name: ${name}\nscenes:\n${Array.from({ length: n }, (_, i) => `  - id: s${i}\n    prompt: ${name} scene ${i}\n`).join("")}${extra}`,
    { file: `${name}.yaml` },
  );

/**
 * The three facts every money test ends with: submits per scene-take, the emulator's bill equal
 * to the report (plus `flaggedAndBilled` ambiguous submits fal did run, at `usdEach`), every clip
 * the run keeps (a folder's files, a bucket's objects) decoding completely. The run's report must
 * also equal a replay of the whole journal.
 */
export async function expectMoneyFacts(
  emu: Emulator,
  report: RunReport,
  run: RunAt,
  o: { submitsPerTake: number[]; flaggedAndBilled?: number; usdEach?: number },
): Promise<void> {
  const store = typeof run === "string" ? createLocalStore(run) : run;
  const manifest = (await readRunFileText(store))!.file.manifest;
  const perTake = planRun(manifest).map(
    (p) => emu.stats().submits.byInput[inputHash(p.input)] ?? 0,
  );
  expect(perTake, "submits per scene-take").toEqual(o.submitsPerTake);
  const billed = emu.stats().billed;
  expect(billed.usd, "the emulator's bill").toBeCloseTo(
    report.totals.billedUsd + (o.usdEach ?? 0.27) * (o.flaggedAndBilled ?? 0),
    6,
  );
  const clips = (await store.listArtifacts("clips/")).map((a) => a.name);
  const made = report.items.flatMap((i) => (i.file ? [i.file] : []));
  expect(
    made.filter((f) => !clips.includes(f)),
    "every clip of the report is kept",
  ).toEqual([]);
  // A bucket's objects are decoded as the bucket holds them: the scratch copies go first, so each
  // is downloaded (checked against its stored SHA-256).
  if (store.kind !== "local") await rm(join(store.dir, "clips"), { recursive: true, force: true });
  for (const f of clips.filter((c) => c.endsWith(".mp4"))) {
    expect(await store.getArtifact(f), `${f} is kept`).toBe(true);
    expect(await decodeErrors(join(store.dir, f)), `${f} decodes`).toBe("");
  }
  expect(
    clips.filter((c) => !c.endsWith(".mp4")),
    "nothing but clips in clips/",
  ).toEqual([]);
  // The run replays only the generations it touched for its report: every row must still be what
  // a replay of the whole journal says (all but the status, which says "reused" for this run).
  const fromJournal = await readRunReport(store);
  const facts = (r: RunReport) => r.items.map(({ status: _s, ...row }) => row);
  expect(facts(report)).toEqual(facts(fromJournal));
  expect(report.totals.billedUsd).toBe(fromJournal.totals.billedUsd);
}

/** Where a fixture's runs live: a folder, or Redis and an S3-compatible bucket (s3rver). */
export type StoreKind = "local" | "redis+s3";

/** Both stores, for `describe.each`: the money tests that apply to both run against both. */
export const STORE_KINDS: StoreKind[] = ["local", "redis+s3"];

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
let bucketRuns = 0;

/**
 * A fresh emulator (`options`) and run for each test of the enclosing `describe`, and the run
 * options every money test starts from (fast retries, this emulator, this run). A `redis+s3` run
 * keeps its records in Redis and its files in a bucket of this file's s3rver, and is made in the
 * test's temp folder (its scratch).
 */
export function runFixture(options: EmulatorOptions = {}, kind: StoreKind = "local") {
  let emu: Emulator | undefined;
  let tmp: Awaited<ReturnType<typeof makeTempDir>> | undefined;
  let s3: TestS3Server | undefined;
  let redis: Redis | undefined;
  let store: RunStore | undefined;
  const keyPrefix = `hailuo-test-${process.pid}`;
  if (kind === "redis+s3") {
    beforeAll(async () => {
      s3 = await startTestS3();
      redis = new Redis(REDIS_URL);
    });
    afterAll(async () => {
      redis?.disconnect();
      await s3?.close();
    });
  }
  beforeEach(async () => {
    emu = await startTestEmulator({ render: "shared", ...options });
    tmp = await makeTempDir();
    if (kind === "redis+s3")
      store = createRedisS3Store({
        url: `s3://${s3!.bucket}/money-${process.pid}-${bucketRuns++}`,
        redis: redis!,
        s3: s3ClientFromEnv(s3!.env),
        keyPrefix,
        scratchDir: tmp.dir,
        leaseMs: 3000,
      });
  });
  afterEach(async () => {
    await emu?.close();
    await tmp?.cleanup();
    if (store) {
      const { log, lease, fence, doc } = redisKeysOf(store.url, keyPrefix);
      await redis!.del(log, lease, fence, doc("run.json"), doc("picks.json"));
      store = undefined;
    }
  });
  const fx = {
    get emu(): Emulator {
      return emu!;
    },
    /** The run's folder: the run itself, or a bucket run's scratch. */
    get dir(): string {
      return tmp!.dir;
    },
    /** A `redis+s3` run's Redis, and its keys there (a test plays another process with them). */
    get redis(): { client: Redis; keys: ReturnType<typeof redisKeysOf> } {
      if (!store) throw new Error("a folder run has no Redis");
      return { client: redis!, keys: redisKeysOf(store.url, keyPrefix) };
    },
    /** The run's store: its folder's, or its Redis and bucket. */
    get run(): RunStore {
      return store ?? createLocalStore(tmp!.dir);
    },
    /** Loses a kept file of the run (a folder's file, a bucket's object), as a user or a rot might. */
    async lose(file: string): Promise<void> {
      if (!store) return unlink(join(tmp!.dir, file));
      const { DeleteObjectCommand } = await import("@aws-sdk/client-s3");
      const key = `${store.url.replace(/^s3:\/\/[^/]+\//, "")}/${file}`;
      await (
        await s3ClientFromEnv(s3!.env)
      ).send(new DeleteObjectCommand({ Bucket: s3!.bucket, Key: key }) as never);
    },
    /** Swaps this test's emulator for one started with other options. */
    async restart(other: EmulatorOptions): Promise<Emulator> {
      await emu?.close();
      return (emu = await startTestEmulator({ render: "shared", ...other }));
    },
    /** Run options into this test's run against its emulator, with `o` on top. */
    opts: (o: Partial<RunOptions> = {}): RunOptions => ({
      runDir: store ?? tmp!.dir,
      client: createHailuoClient({ emulatorUrl: emu!.url, submitRetryBaseDelayMs: 10 }),
      retryBaseDelayMs: 10,
      ...o,
    }),
  };
  return fx;
}
