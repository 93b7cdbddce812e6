import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Queue } from "bullmq";
import { describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import { inputHash } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import { planRun, readRunReport } from "@hailuo/runner";
import { waitFor } from "@hailuo/test-utils";
import { QUEUES, enqueueRun, startWorker } from "./index.js";
import { REDIS, queueFixture } from "./test-queue.js";

// A run's settings hold in Redis mode too: what it was enqueued with (a job's retries) is recorded
// in run.json, and every worker uses it rather than its own default.
describe("a distributed run's own settings", () => {
  // The first generation fails (not billed): with retries it would be submitted again.
  const fx = queueFixture("rstest", { faults: { generationErrorCount: 1 } });
  const { prefix } = fx;

  it("retries: 0 recorded at enqueue holds against a worker started with --retries 3", async () => {
    const tag = randomBytes(3).toString("hex");
    const manifest = parseManifest(
      `name: r\nscenes:\n  - prompt: settings ${tag}\nthumbnails: { preview: none }\n`,
      { file: "r.yaml" },
    );
    const runDir = join(fx.dir, "run");
    await enqueueRun({ manifest, runDir, redisUrl: REDIS, prefix, retries: 0 });
    expect(JSON.parse(await readFile(join(runDir, "run.json"), "utf8"))).toMatchObject({
      retries: 0,
    });
    const assemble = new Queue(QUEUES.assemble, { connection: fx.redis, prefix });
    const client = createHailuoClient({ emulatorUrl: fx.emu.url });
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
      planRun(manifest).map((p) => fx.emu.stats().submits.byInput[inputHash(p.input)] ?? 0),
    ).toEqual([1]);
    expect(fx.emu.stats().billed.usd).toBeCloseTo(report.totals.billedUsd, 6);
    expect(report.totals.billedUsd).toBe(0);
  }, 60_000);
});
