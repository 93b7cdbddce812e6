import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Queue } from "bullmq";
import { describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import { inputHash } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import { acquireRunLock, readJournal, runManifest } from "@hailuo/runner";
import { waitFor } from "@hailuo/test-utils";
import { QUEUES, enqueueRun, startWorker } from "./index.js";
import { REDIS, queueFixture } from "./test-queue.js";

// Real Redis (scripts/setup.sh --test starts one), real emulator, an in-process worker.
describe("enqueueRun + startWorker", () => {
  const fx = queueFixture("qtest", { slots: 4 });
  const { prefix } = fx;

  it("dedupes a run enqueued twice, runs each scene once, fails a policy scene for good and still assembles once", async () => {
    fx.emu.setFaults({ policyWords: ["forbidden"] });
    const tag = randomBytes(3).toString("hex");
    const manifest = parseManifest(
      `name: q\nscenes:\n${Array.from({ length: 5 }, (_, i) => `  - prompt: queue ${tag} ${i}\n`).join("")}  - id: bad\n    prompt: forbidden ${tag}\nassemble:\n  transition: cut\nthumbnails: { preview: none }\n`,
      { file: "q.yaml" },
    );
    const runDir = join(fx.dir, "run");
    const first = await enqueueRun({
      manifest,
      runDir,
      redisUrl: REDIS,
      prefix,
      falConcurrency: 2,
    });
    const second = await enqueueRun({
      manifest,
      runDir,
      redisUrl: REDIS,
      prefix,
      falConcurrency: 2,
    });
    expect(second).toEqual(first);
    const generate = new Queue(QUEUES.generate, { connection: fx.redis, prefix });
    const assemble = new Queue(QUEUES.assemble, { connection: fx.redis, prefix });
    expect(await generate.getGlobalConcurrency()).toBe(2);
    const counts = await generate.getJobCounts("waiting", "prioritized", "delayed");
    expect((counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0)).toBe(6);

    const worker = await startWorker({
      redisUrl: REDIS,
      prefix,
      client: createHailuoClient({ emulatorUrl: fx.emu.url }),
      concurrency: 4,
      retryBaseDelayMs: 10,
    });
    try {
      await waitFor(async () => (await assemble.getJobCounts("completed")).completed === 1, 60_000);
      expect(await generate.getJobCounts("completed", "failed")).toEqual({
        completed: 5,
        failed: 1,
      });
      const [failed] = await generate.getJobs(["failed"]);
      expect(failed!.failedReason).toContain("content_policy");
      expect(failed!.attemptsMade).toBe(1);
      const [parent] = await assemble.getJobs(["completed"]);
      expect(parent!.returnvalue).toMatchObject({ film: "film.mp4", skipped: ["bad"] });
      expect(fx.emu.stats().maxInProgress).toBeLessThanOrEqual(2);
      const { records } = await readJournal(join(runDir, "journal.jsonl"));
      expect(records.filter((r) => r.t === "submitting")).toHaveLength(6);
    } finally {
      await worker.close();
      await generate.close();
      await assemble.close();
    }
  }, 90_000);

  it("a folder a local run holds is never enqueued; a local run into a folder still owned by the queue is refused", async () => {
    const runDir = join(fx.dir, "owned");
    const manifest = parseManifest(`name: owned\nscenes:\n  - prompt: owned scene\n`, {
      file: "o.yaml",
    });
    const release = await acquireRunLock(runDir);
    try {
      await expect(enqueueRun({ manifest, runDir, redisUrl: REDIS, prefix })).rejects.toMatchObject(
        { code: "locked" },
      );
    } finally {
      await release();
    }
    await enqueueRun({ manifest, runDir, redisUrl: REDIS, prefix });
    const client = createHailuoClient({ emulatorUrl: fx.emu.url });
    await expect(runManifest({ manifest, runDir, client })).rejects.toMatchObject({
      code: "locked",
    });
    expect(fx.emu.stats().submits.byInput).not.toHaveProperty(
      inputHash({ prompt: "owned scene", duration: "6", prompt_optimizer: true }),
    );
  });
});
