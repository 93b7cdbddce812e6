import { randomBytes } from "node:crypto";
import { copyFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import { inputHash } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import { planRun, readRunReport } from "@hailuo/runner";
import {
  decodeErrors,
  startTestEmulator,
  startTestS3,
  waitFor,
  type TestS3Server,
} from "@hailuo/test-utils";
import {
  QUEUES,
  budgetKey,
  createRunStores,
  enqueueRun,
  runBudget,
  runIdFor,
  startWorker,
} from "./index.js";
import { REDIS, queueFixture } from "./test-queue.js";

// The assemble job makes posters, a sheet, a page and a film; no test here looks at GIF previews.
const NO_PREVIEWS = "thumbnails: { preview: none }\n";
import { openRunBudget } from "./run-budget.js";

/**
 * Six clips at $0.27 against a $1.62 budget, one submit's answer lost (fal's list cannot explain
 * it): the lost one counts at full cost, one scene is refused for budget, the bill stays within.
 * `runDir` is a folder or a bucket's address; `clipFiles` lists the run's saved clips as local files.
 */
async function lostAnswerWithinBudget(
  fx: ReturnType<typeof queueFixture>,
  runDir: string,
  clipFiles: () => Promise<string[]>,
): Promise<void> {
  const { prefix } = fx;
  const tag = randomBytes(3).toString("hex");
  const manifest = parseManifest(
    `name: b\nscenes:\n${Array.from({ length: 6 }, (_, i) => `  - prompt: budget ${tag} ${i}\n`).join("")}${NO_PREVIEWS}`,
    { file: "b.yaml" },
  );
  await enqueueRun({
    manifest,
    runDir,
    redisUrl: REDIS,
    prefix,
    falConcurrency: 1,
    budgetUsd: 1.62,
  });
  await workUntilAssembled(fx, runDir, fx.emu.url, 1);
  await waitFor(() => fx.emu.stats().completed === fx.emu.stats().submits.total);
  const stores = createRunStores({ redis: fx.redis, keyPrefix: prefix });
  const report = await readRunReport(stores.of(runDir)).finally(() => stores.close());
  expect(report.items.filter((i) => i.errorCode === "budget")).toHaveLength(1);
  expect(report.totals.possibleDoubleChargeUsd).toBeCloseTo(0.27, 6);
  expect(fx.emu.stats().billed.usd).toBeLessThanOrEqual(1.62 + 1e-9);
  // The budget is gone with the run: a later enqueue of the folder starts with its own.
  expect(await fx.redis.exists(budgetKey(prefix, runIdFor(runDir)))).toBe(0);

  // The three facts: submits per scene-take, the bill equals the report (billed + the flagged
  // lost submit fal did run), every clip decodes.
  const perTake = planRun(manifest).map(
    (p) => fx.emu.stats().submits.byInput[inputHash(p.input)] ?? 0,
  );
  expect(perTake.toSorted()).toEqual([0, 1, 1, 1, 1, 2]);
  expect(fx.emu.stats().billed.usd).toBeCloseTo(
    report.totals.billedUsd + report.totals.possibleDoubleChargeUsd,
    6,
  );
  const clips = await clipFiles();
  expect(clips).toHaveLength(5);
  for (const f of clips) expect(await decodeErrors(f), f).toBe("");
}

/** Runs a worker on the emulator at `emulatorUrl` until the run at `runDir` is assembled. */
async function workUntilAssembled(
  fx: ReturnType<typeof queueFixture>,
  runDir: string,
  emulatorUrl: string,
  concurrency: number,
) {
  const { prefix } = fx;
  const assemble = new Queue(QUEUES.assemble, { connection: fx.redis, prefix });
  const client = createHailuoClient({ emulatorUrl, submitRetryBaseDelayMs: 10 });
  const worker = await startWorker({
    redisUrl: REDIS,
    prefix,
    client,
    concurrency,
    retryBaseDelayMs: 10,
  });
  try {
    const done = async () =>
      (await assemble.getJobs(["completed"])).some((j) => j.data.runDir === runDir);
    await waitFor(done, 60_000);
  } finally {
    await worker.close();
    await assemble.close();
  }
}

describe("a distributed run's budget", () => {
  // A lost submit answer that fal's request list cannot explain (no Platform API scope).
  const fx = queueFixture("btest", {
    slots: 4,
    platformApi: "forbidden",
    faults: { rules: [{ route: "submit", kind: "drop", count: 1 }] },
  });
  const { prefix } = fx;

  it("workers reserve each submit in Redis: a lost answer counts at full cost and the bill stays within --budget", async () => {
    const runDir = join(fx.dir, "run");
    await lostAnswerWithinBudget(fx, runDir, async () =>
      (await readdir(join(runDir, "clips")))
        .filter((f) => f.endsWith(".mp4"))
        .map((f) => join(runDir, "clips", f)),
    );
  }, 90_000);

  it("workers price a run at the account's price recorded at enqueue, not the list price", async () => {
    const dear = await startTestEmulator({ render: "shared", priceUsdPerSecond: 0.09 });
    try {
      const tag = randomBytes(3).toString("hex");
      const manifest = parseManifest(
        `name: d\nscenes:\n${Array.from({ length: 3 }, (_, i) => `  - prompt: dear ${tag} ${i}\n`).join("")}${NO_PREVIEWS}`,
        { file: "d.yaml" },
      );
      const runDir = join(fx.dir, "dear");
      // At the list price three clips ($0.81) would pass a $1.08 budget, and fal would bill $1.62.
      await expect(
        enqueueRun({
          manifest,
          runDir,
          redisUrl: REDIS,
          prefix,
          budgetUsd: 1.08,
          usdPerSecond: 0.09,
        }),
      ).rejects.toMatchObject({ code: "budget" });
      await enqueueRun({
        manifest,
        runDir,
        redisUrl: REDIS,
        prefix,
        budgetUsd: 1.62,
        usdPerSecond: 0.09,
      });
      await workUntilAssembled(fx, runDir, dear.url, 2);
      const report = await readRunReport(runDir);
      expect(report.totals.billedUsd).toBeCloseTo(1.62, 6);
      expect(dear.stats().billed.usd).toBeCloseTo(report.totals.billedUsd, 6);
      expect(
        planRun(manifest).map((p) => dear.stats().submits.byInput[inputHash(p.input)] ?? 0),
      ).toEqual([1, 1, 1]);
      for (const f of (await readdir(join(runDir, "clips"))).filter((c) => c.endsWith(".mp4")))
        expect(await decodeErrors(join(runDir, "clips", f)), f).toBe("");
    } finally {
      await dear.close();
    }
  }, 90_000);

  it("gives back only what a generation reserved, and refuses a run whose budget vanished from Redis", async () => {
    const runId = `unit-${randomBytes(3).toString("hex")}`;
    await openRunBudget(fx.redis, prefix, runId, 0.54);
    const budget = runBudget(fx.redis, prefix, runId, true);
    expect(await budget.reserve(0.27, "a")).toBe(true);
    // "b" holds no reservation here (its request came from another enqueue): nothing is freed.
    await budget.release(0.27, "b");
    expect(await budget.reserve(0.27, "c")).toBe(true);
    expect(await budget.reserve(0.27, "d")).toBe(false);
    await budget.release(0.27, "a");
    await budget.release(0.27, "a");
    expect(await budget.reserve(0.27, "d")).toBe(true);
    expect(await budget.reserve(0.27, "e")).toBe(false);
    expect(await fx.redis.ttl(budgetKey(prefix, runId))).toBeGreaterThan(0);
    await fx.redis.del(budgetKey(prefix, runId));
    await expect(budget.reserve(0.27, "f")).rejects.toMatchObject({ code: "budget" });
    expect(await runBudget(fx.redis, prefix, runId, false).reserve(0.27, "f")).toBe(true);
  });
});

describe("a distributed run's budget, the run kept in a bucket", () => {
  const fx = queueFixture("bbtest", {
    slots: 4,
    platformApi: "forbidden",
    faults: { rules: [{ route: "submit", kind: "drop", count: 1 }] },
  });
  let s3: TestS3Server;
  beforeAll(async () => {
    s3 = await startTestS3();
    // Workers find the bucket through the AWS SDK's standard environment.
    Object.assign(process.env, s3.env);
  });
  afterAll(() => s3.close());

  it("the same guarantees with the journal in Redis and the clips in the bucket", async () => {
    const runDir = `s3://${s3.bucket}/budget-${randomBytes(3).toString("hex")}`;
    await lostAnswerWithinBudget(fx, runDir, async () => {
      const stores = createRunStores({ redis: fx.redis, keyPrefix: fx.prefix });
      const store = stores.of(runDir);
      const files: string[] = [];
      for (const a of await store.listArtifacts("clips/")) {
        await store.getArtifact(a.name);
        const copy = join(fx.dir, a.name.replace("/", "-"));
        await copyFile(join(store.dir, a.name), copy);
        files.push(copy);
      }
      await stores.close();
      return files;
    });
  }, 90_000);
});
