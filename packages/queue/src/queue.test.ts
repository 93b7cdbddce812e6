import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Queue } from "bullmq";
import { describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import { inputHash } from "@hailuo/emulator";
import { loadManifest, parseManifest } from "@hailuo/manifest";
import { acquireRunLock, planRun, readJournal, readRunReport, runManifest } from "@hailuo/runner";
import { decodeErrors, greyPng, waitFor } from "@hailuo/test-utils";
import { QUEUES, enqueueRun, removeAllQueues, startWorker } from "./index.js";
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

  it("a folder whose journal lost the records of its paid clips is never enqueued: a resume adopts them first", async () => {
    // Queues of its own: a job enqueued here would be seen by no other test's worker.
    const prefix = `${fx.prefix}-lost`;
    const runDir = join(fx.dir, "lost-records");
    const tag = randomBytes(3).toString("hex");
    const manifest = parseManifest(
      `name: lost\nscenes:\n  - prompt: lost ${tag} 1\n  - prompt: lost ${tag} 2\n`,
      { file: "lost.yaml" },
    );
    const client = createHailuoClient({ emulatorUrl: fx.emu.url });
    expect((await runManifest({ manifest, runDir, client })).exitCode).toBe(0);
    await rm(join(runDir, "journal.jsonl"));
    const error = await enqueueRun({ manifest, runDir, redisUrl: REDIS, prefix }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: "preflight" });
    expect((error as Error).message).toContain("2 paid clip(s) its journal has no record of");
    const generate = new Queue(QUEUES.generate, { connection: fx.redis, prefix });
    try {
      expect(await generate.count(), "no job exists").toBe(0);
      // The resume adopts both clips (nothing submitted); then the run may be enqueued.
      const resumed = await runManifest({ runDir, client });
      expect(resumed.report.items.map((i) => i.status)).toEqual(["cached", "cached"]);
      await enqueueRun({ manifest, runDir, redisUrl: REDIS, prefix });
      expect(
        planRun(manifest).map((p) => fx.emu.stats().submits.byInput[inputHash(p.input)]),
        "submits per scene-take",
      ).toEqual([1, 1]);
    } finally {
      await generate.close();
      await removeAllQueues({ redisUrl: REDIS, prefix });
    }
  });

  it("uploads an image-to-video run's pictures at enqueue; a worker without the files submits with their URLs, once per scene", async () => {
    const tag = randomBytes(3).toString("hex");
    // Queues of its own: no job left by another test runs in this test's worker or bill.
    const prefix = `${fx.prefix}-i2v`;
    const dir = join(fx.dir, `i2v-${tag}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "start.png"), greyPng(640, 360, 90));
    await writeFile(join(dir, "end.png"), greyPng(640, 360, 170));
    const file = join(dir, "i2v.yaml");
    await writeFile(
      file,
      `name: i2v\nscenes:\n  - id: a\n    prompt: i2v ${tag} a\n    image: start.png\n    end_image: end.png\n  - id: b\n    prompt: i2v ${tag} b\n    image: start.png\n`,
    );
    const manifest = await loadManifest(file);
    const client = createHailuoClient({ emulatorUrl: fx.emu.url });
    const runDir = join(fx.dir, `i2v-run-${tag}`);
    const uploadsBefore = fx.emu.stats().uploads.completed;
    const billedBefore = fx.emu.stats().billed.usd;
    // Without a client to upload with, nothing is recorded and no job exists.
    const none = join(fx.dir, `none-${tag}`);
    await expect(
      enqueueRun({ manifest, runDir: none, redisUrl: REDIS, prefix }),
    ).rejects.toMatchObject({ code: "usage" });
    expect(existsSync(join(none, "run.json"))).toBe(false);
    const run = await enqueueRun({ manifest, runDir, redisUrl: REDIS, prefix, client });
    // Two pictures, each uploaded once however many scenes use it.
    expect(fx.emu.stats().uploads.completed - uploadsBefore).toBe(2);
    // The worker's machine has no pictures.
    await rm(dir, { recursive: true });
    const assemble = new Queue(QUEUES.assemble, { connection: fx.redis, prefix });
    const worker = await startWorker({ redisUrl: REDIS, prefix, client, retryBaseDelayMs: 10 });
    try {
      await waitFor(
        async () => (await (await assemble.getJob(run.parentJobId))?.getState()) === "completed",
        60_000,
      );
      const report = await readRunReport(runDir);
      expect(report.items.map((i) => `${i.scene}:${i.status}`)).toEqual(["a:done", "b:done"]);
      expect(fx.emu.stats().uploads.completed - uploadsBefore).toBe(2);
      const { records } = await readJournal(join(runDir, "journal.jsonl"));
      const submitted = records.flatMap((r) => (r.t === "submitting" ? [r.scene] : []));
      expect(submitted.sort()).toEqual(["a", "b"]);
      // The report says what the emulator billed, to the cent; every clip decodes.
      expect(report.totals.billedUsd).toBeCloseTo(fx.emu.stats().billed.usd - billedBefore, 6);
      expect(report.totals.billedRequests).toBe(2);
      for (const i of report.items)
        expect(await decodeErrors(join(runDir, i.file!)), `${i.file} decodes`).toBe("");
    } finally {
      await worker.close();
      await assemble.close();
      await removeAllQueues({ redisUrl: REDIS, prefix });
    }
  }, 90_000);

  it("refuses to enqueue a run with continue_from: its frames wait for a clip no parallel job can wait for", async () => {
    const manifest = parseManifest(
      `name: chain\nscenes:\n  - id: a\n    prompt: chain a\n  - id: b\n    prompt: chain b\n    continue_from: a\n`,
      { file: "chain.yaml" },
    );
    const runDir = join(fx.dir, "chain");
    const error = await enqueueRun({ manifest, runDir, redisUrl: REDIS, prefix }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: "usage" });
    expect((error as Error).message).toContain("scene b continues from a");
    expect(existsSync(join(runDir, "run.json"))).toBe(false);
  });
});
