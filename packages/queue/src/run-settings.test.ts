import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import { inputHash, type Emulator } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import { planRun, readRunReport } from "@hailuo/runner";
import { makeTempDir, startTestEmulator, waitFor } from "@hailuo/test-utils";
import { QUEUES, enqueueRun, removeAllQueues, startWorker } from "./index.js";

const REDIS = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

// A run's settings hold in Redis mode too: what it was enqueued with (a job's retries) is recorded
// in run.json, and every worker uses it rather than its own default.
describe("a distributed run's own settings", () => {
  const prefix = `hailuo-rstest-${randomBytes(4).toString("hex")}`;
  let emu: Emulator;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let redis: Redis;
  beforeAll(async () => {
    // The first generation fails (not billed): with retries it would be submitted again.
    emu = await startTestEmulator({ render: "shared", faults: { generationErrorCount: 1 } });
    tmp = await makeTempDir();
    redis = new Redis(REDIS, { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    await removeAllQueues({ redisUrl: REDIS, prefix });
    redis.disconnect();
    await emu.close();
    await tmp.cleanup();
  });

  it("retries: 0 recorded at enqueue holds against a worker started with --retries 3", async () => {
    const tag = randomBytes(3).toString("hex");
    const manifest = parseManifest(
      `name: r\nscenes:\n  - prompt: settings ${tag}\nthumbnails: { preview: none }\n`,
      { file: "r.yaml" },
    );
    const runDir = join(tmp.dir, "run");
    await enqueueRun({ manifest, runDir, redisUrl: REDIS, prefix, retries: 0 });
    expect(JSON.parse(await readFile(join(runDir, "run.json"), "utf8"))).toMatchObject({
      retries: 0,
    });
    const assemble = new Queue(QUEUES.assemble, { connection: redis, prefix });
    const client = createHailuoClient({ emulatorUrl: emu.url });
    const worker = await startWorker({
      redisUrl: REDIS,
      prefix,
      client,
      retries: 3,
      retryBaseDelayMs: 10,
    });
    try {
      await waitFor(
        async () =>
          (await assemble.getJobs(["completed", "failed"])).some((j) => j.data.runDir === runDir),
        60_000,
      );
    } finally {
      await worker.close();
      await assemble.close();
    }
    const report = await readRunReport(runDir);
    expect(report.items[0]).toMatchObject({ status: "failed", errorCode: "generation_failed" });
    // One submit, nothing billed: the failed generation was not sent again.
    expect(
      planRun(manifest).map((p) => emu.stats().submits.byInput[inputHash(p.input)] ?? 0),
    ).toEqual([1]);
    expect(emu.stats().billed.usd).toBeCloseTo(report.totals.billedUsd, 6);
    expect(report.totals.billedUsd).toBe(0);
  }, 60_000);
});
