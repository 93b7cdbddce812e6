import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { Queue } from "bullmq";
import { describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import { inputHash } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import { acquireRunLock, planRun, readJournal, readRunReport, runManifest } from "@hailuo/runner";
import { decodeErrors, startFaultyGateway, waitFor } from "@hailuo/test-utils";
import { QUEUES, enqueueRun, startWorker } from "./index.js";
import { REDIS, queueFixture } from "./test-queue.js";

// A worker cut off from Redis (or paused) past its job's lock: BullMQ hands the job to another
// worker, which finds the journaled `submitting` and submits the scene itself.
describe("a generate job whose lock another worker took", () => {
  const fx = queueFixture("lock", { slots: 2 });

  /**
   * Enqueues a two-scene run (queues of its own, one fal slot) whose first submit fal refuses
   * before queueing it, asking to wait `retryAfterS`.
   */
  async function enqueueRefusedOnce(name: string, retryAfterS: number) {
    const tag = randomBytes(3).toString("hex");
    const prefix = `${fx.prefix}-${tag}`;
    const manifest = parseManifest(
      `name: ${name}\nscenes:\n  - id: a\n    prompt: ${name} ${tag} a\n  - id: b\n    prompt: ${name} ${tag} b\n`,
      { file: `${name}.yaml` },
    );
    const runDir = join(fx.dir, `${name}-${tag}`);
    await enqueueRun({ manifest, runDir, redisUrl: REDIS, prefix, falConcurrency: 1 });
    fx.emu.setFaults({ rules: [{ route: "submit", kind: 429, count: 1, retryAfterS }] });
    return { prefix, manifest, runDir, before: fx.emu.stats() };
  }

  // Either the lock's renewal fails first and the job is cancelled at once (not after the
  // Retry-After of 60 s, past the wait below), or the check before the re-send finds the lock
  // another's: whichever comes first stops the submit. The lock is taken at a moment the test
  // makes, not one it must catch in time: once the worker waits out the 429 (its client says it
  // retries), or, for the 1 s wait, while a gateway holds the 429's answer (the wait starts after;
  // the renewal, 15 s away, cannot come first).
  it.each([
    { lockDurationMs: 2000, retryAfterS: 60, first: "the lock's renewal", hold: false },
    { lockDurationMs: 30_000, retryAfterS: 1, first: "the check before the re-send", hold: true },
  ])(
    "never re-sends a submit waiting out a 429 once another worker holds the job ($first)",
    async ({ lockDurationMs, retryAfterS, hold }) => {
      const { prefix, manifest, runDir, before } = await enqueueRefusedOnce("lock", retryAfterS);
      const lines: string[] = [];
      const generate = new Queue(QUEUES.generate, { connection: fx.redis, prefix });
      const assemble = new Queue(QUEUES.assemble, { connection: fx.redis, prefix });
      const gw = await startFaultyGateway(fx.emu.url);
      if (hold) gw.failNextSubmits("delay", 1);
      let retrying = false;
      const worker = (ms: number) =>
        startWorker({
          redisUrl: REDIS,
          prefix,
          client: createHailuoClient({
            emulatorUrl: gw.url,
            onHttpRetry: (r) => void (r.operation === "submit" && (retrying = true)),
          }),
          concurrency: 1,
          lockDurationMs: ms,
          log: (line) => lines.push(line),
        });
      const first = await worker(lockDurationMs);
      let second: Awaited<ReturnType<typeof worker>> | undefined;
      try {
        await waitFor(() => (hold ? gw.held() === 1 : retrying));
        const [job] = await generate.getJobs(["active"]);
        const lock = `${prefix}:${QUEUES.generate}:${job!.id}:lock`;
        // As a worker that took the job over after a stall holds it.
        await fx.redis.set(lock, "another-worker", "PX", 60_000);
        const journal = join(runDir, "journal.jsonl");
        const seen = (await readJournal(journal)).records.length;
        gw.release();
        // This worker's processing of the job ends (BullMQ refuses its finish: the lock is another's).
        await waitFor(
          () => lines.some((l) => l.includes(`Lock mismatch for job ${job!.id}`)),
          30_000,
        );
        expect(
          fx.emu.stats().submits.total - before.submits.total,
          "no submit re-sent after the lock was lost",
        ).toBe(0);
        // Nor a record: the next holder keeps the run's journal now.
        expect((await readJournal(journal)).records.length, "nothing journaled").toBe(seen);
        await first.close();

        // The other worker goes away; the job stalls, is taken again, and the run finishes.
        fx.emu.setFaults({});
        await fx.redis.del(lock);
        second = await worker(2000);
        await waitFor(
          async () => (await assemble.getJobCounts("completed")).completed === 1,
          30_000,
        );
        const plan = planRun(manifest);
        expect(
          plan.map((p) => fx.emu.stats().submits.byInput[inputHash(p.input)] ?? 0),
          "submits per scene-take",
        ).toEqual([1, 1]);
        const t = (await readRunReport(runDir)).totals;
        // The submit stopped while waiting was never sent: no possible charge is flagged.
        expect(t.possibleDoubleChargeUsd).toBe(0);
        expect(fx.emu.stats().billed.usd - before.billed.usd, "billed = reported").toBeCloseTo(
          t.billedUsd,
          6,
        );
        const clips = (await readdir(join(runDir, "clips"))).filter((f) => f.endsWith(".mp4"));
        expect(clips).toHaveLength(2);
        for (const f of clips) expect(await decodeErrors(join(runDir, "clips", f)), f).toBe("");
      } finally {
        await first.close();
        await second?.close();
        await generate.close();
        await assemble.close();
        await gw.close();
      }
    },
    90_000,
  );

  it("never re-sends a submit waiting out a 429 once a local process took the run over", async () => {
    const { prefix, manifest, runDir, before } = await enqueueRefusedOnce("taken", 1);
    const generate = new Queue(QUEUES.generate, { connection: fx.redis, prefix });
    // The 429's answer is held until the run is taken: the Retry-After wait starts after it.
    const gw = await startFaultyGateway(fx.emu.url);
    gw.failNextSubmits("delay", 1);
    const worker = await startWorker({
      redisUrl: REDIS,
      prefix,
      client: createHailuoClient({ emulatorUrl: gw.url }),
      concurrency: 1,
    });
    let release: (() => Promise<void>) | undefined;
    try {
      await waitFor(() => gw.held() === 1);
      // `resume --take-over` holds the folder's run.lock while the worker's job lock is still its own.
      release = await acquireRunLock(runDir);
      const journal = join(runDir, "journal.jsonl");
      const seen = (await readJournal(journal)).records.length;
      gw.release();
      await waitFor(async () => ((await generate.getJobCounts("failed")).failed ?? 0) >= 1, 30_000);
      await worker.close();
      expect(fx.emu.stats().submits.total - before.submits.total, "no submit re-sent").toBe(0);
      expect(
        (await readJournal(journal)).records.slice(seen).map((r) => r.t),
        "nothing journaled",
      ).toEqual([]);
      // The process that took the run over finishes it, paying each scene once.
      await release();
      release = undefined;
      fx.emu.setFaults({});
      const resumed = await runManifest({
        runDir,
        client: createHailuoClient({ emulatorUrl: fx.emu.url }),
        takeOver: true,
      });
      expect(
        planRun(manifest).map((p) => fx.emu.stats().submits.byInput[inputHash(p.input)] ?? 0),
        "submits per scene-take",
      ).toEqual([1, 1]);
      expect(fx.emu.stats().billed.usd - before.billed.usd, "billed = reported").toBeCloseTo(
        resumed.report.totals.billedUsd + resumed.report.totals.possibleDoubleChargeUsd,
        6,
      );
      for (const i of resumed.report.items)
        expect(await decodeErrors(join(runDir, i.file ?? "")), i.scene).toBe("");
    } finally {
      await release?.();
      await worker.close();
      await generate.close();
      await gw.close();
    }
  }, 60_000);
});
