import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Queue } from "bullmq";
import { describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import { inputHash } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import { planRun, readRunReport } from "@hailuo/runner";
import { decodeErrors, holdableClock, waitFor } from "@hailuo/test-utils";
import { QUEUES, cancelRun, enqueueRun, removeAllQueues, startWorker } from "./index.js";
import { REDIS, queueFixture } from "./test-queue.js";

// A worker stopped gracefully (SIGTERM, Ctrl-C) leaves its job's request journaled and live.
describe("a generate job whose workers keep stopping", () => {
  const held = holdableClock();
  const fx = queueFixture("stops", { clock: held.clock });

  it("is given back each time, never failed: six stops later the run ends with its clip, paid once", async () => {
    const tag = randomBytes(3).toString("hex");
    const manifest = parseManifest(`name: stops\nscenes:\n  - id: a\n    prompt: stops ${tag}\n`, {
      file: "stops.yaml",
    });
    const runDir = join(fx.dir, `stops-${tag}`);
    await enqueueRun({ manifest, runDir, redisUrl: REDIS, prefix: fx.prefix });
    const generate = new Queue(QUEUES.generate, { connection: fx.redis, prefix: fx.prefix });
    const assemble = new Queue(QUEUES.assemble, { connection: fx.redis, prefix: fx.prefix });
    const lines: string[] = [];
    const worker = () =>
      startWorker({
        redisUrl: REDIS,
        prefix: fx.prefix,
        client: createHailuoClient({ emulatorUrl: fx.emu.url }),
        log: (line) => lines.push(line),
      });
    // The generation stays in progress on fal while its workers come and go.
    held.hold();
    try {
      // More stops than the job's five attempts.
      for (let stop = 1; stop <= 6; stop++) {
        const w = await worker();
        // A stopping worker may take the job it gave back once more before it is gone.
        await waitFor(() => lines.filter((l) => l.endsWith("a#1 started")).length >= stop);
        await waitFor(() => fx.emu.stats().submits.total === 1);
        await w.close();
      }
      const [job] = await generate.getJobs(["delayed", "waiting", "prioritized"]);
      expect(job?.attemptsMade, "no stop counted as a failed attempt").toBe(0);
      held.release();
      const last = await worker();
      try {
        await waitFor(async () => (await assemble.getJobCounts("completed")).completed === 1);
      } finally {
        await last.close();
      }
      const report = await readRunReport(runDir);
      expect(report.totals).toMatchObject({ done: 1, inFlightUsd: 0 });
      expect(
        planRun(manifest).map((p) => fx.emu.stats().submits.byInput[inputHash(p.input)] ?? 0),
        "submits per scene-take",
      ).toEqual([1]);
      expect(fx.emu.stats().billed.usd, "billed = reported").toBeCloseTo(
        report.totals.billedUsd,
        6,
      );
      expect(await decodeErrors(join(runDir, report.items[0]!.file!))).toBe("");
    } finally {
      held.release();
      await generate.close();
      await assemble.close();
    }
  }, 90_000);

  it("cancelled from the queue, its live request is named as still billed, not as nothing paid", async () => {
    const tag = randomBytes(3).toString("hex");
    const manifest = parseManifest(
      `name: cancel\nscenes:\n  - id: a\n    prompt: cancel ${tag}\n`,
      {
        file: "cancel.yaml",
      },
    );
    const runDir = join(fx.dir, `cancel-${tag}`);
    const prefix = `${fx.prefix}-${tag}`;
    await enqueueRun({ manifest, runDir, redisUrl: REDIS, prefix });
    const submits = fx.emu.stats().submits.total;
    held.hold();
    try {
      const w = await startWorker({
        redisUrl: REDIS,
        prefix,
        client: createHailuoClient({ emulatorUrl: fx.emu.url }),
      });
      await waitFor(() => fx.emu.stats().submits.total === submits + 1);
      // The stopped worker gives the job back: it waits in the queue with its request live on fal.
      await w.close();
      const r = await cancelRun({ redisUrl: REDIS, prefix }, runDir);
      expect(r).toMatchObject({ removed: 1, stillRunning: 0, gone: true, liveUsd: 0.27 });
    } finally {
      held.release();
      await removeAllQueues({ redisUrl: REDIS, prefix });
    }
  });
});
