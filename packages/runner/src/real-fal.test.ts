import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createHailuoClient, type HailuoHandle } from "@hailuo/core";
import { parseManifest } from "@hailuo/manifest";
import {
  decodeErrors,
  heldClock,
  makeTempDir,
  startTestEmulator,
  waitFor,
} from "@hailuo/test-utils";
import { runManifest, type RunEvent } from "./index.js";

// The runner against the emulator's default, fal-shaped behaviour (reference fal-protocol.md §14):
// failures are COMPLETED without `error` and fail only at the result fetch; a cancel of a running
// request is a signal the app may ignore; lost submits can be found on fal's request list.

const board = (name: string, n: number) =>
  parseManifest(
    `name: ${name}\nscenes:\n${Array.from({ length: n }, (_, i) => `  - id: s${i}\n    prompt: ${name} scene ${i}\n`).join("")}`,
    { file: `${name}.yaml` },
  );

async function clipsDecode(dir: string): Promise<void> {
  for (const f of await readdir(join(dir, "clips")))
    expect(await decodeErrors(join(dir, "clips", f))).toBe("");
}

describe("the runner against fal's shapes", () => {
  it("a generation error rate of 0.35: every scene ends done; submits = scenes + failed generations; bill = report", async () => {
    const emu = await startTestEmulator({
      render: "shared",
      slots: 4,
      progressLatencyMs: 100,
      seed: 35,
      faults: { generationErrorRate: 0.35 },
    });
    const tmp = await makeTempDir();
    try {
      const r = await runManifest({
        manifest: board("flaky", 12),
        runDir: tmp.dir,
        client: createHailuoClient({ emulatorUrl: emu.url }),
        concurrency: 4,
        retries: 8,
        retryBaseDelayMs: 5,
      });
      expect(r.report.items.map((i) => i.status)).toEqual(Array(12).fill("done"));
      const s = emu.stats();
      expect(s.failedGenerations).toBeGreaterThan(0);
      expect(s.submits.total).toBe(12 + s.failedGenerations);
      expect(s.billed.usd).toBeCloseTo(r.report.totals.billedUsd, 6);
      expect(r.report.totals.billedUsd).toBeCloseTo(12 * 0.27, 6);
      await clipsDecode(tmp.dir);
    } finally {
      await emu.close();
      await tmp.cleanup();
    }
  });

  for (const cancelRunning of ["signal", "immediate"] as const) {
    it(`a running request cancelled on fal (${cancelRunning}): resume ${cancelRunning === "signal" ? "keeps the clip it still produced" : "submits again, free"}; billed once`, async () => {
      // Held until the first run has stopped: the request is still running when it is cancelled.
      const held = heldClock();
      const emu = await startTestEmulator({
        render: "shared",
        slots: 1,
        progressLatencyMs: 1200,
        cancelRunning,
        clock: held.clock,
      });
      const tmp = await makeTempDir();
      try {
        const client = createHailuoClient({ emulatorUrl: emu.url });
        const ac = new AbortController();
        let running: HailuoHandle | undefined;
        const onEvent = (e: RunEvent) => {
          if (e.type === "item" && e.phase === "in_progress" && e.requestId)
            running = {
              endpoint: "fal-ai/minimax/hailuo-02/standard/text-to-video",
              requestId: e.requestId,
              submittedAt: "",
            };
        };
        const manifest = board(`cancel-${cancelRunning}`, 1);
        const first = runManifest({
          manifest,
          runDir: tmp.dir,
          client,
          signal: ac.signal,
          onEvent,
        });
        await waitFor(() => Boolean(running));
        expect(await client.cancel(running!)).toBe("cancellation_requested");
        ac.abort();
        expect((await first).exitCode).toBe(130);
        held.release();
        const second = await runManifest({
          manifest,
          runDir: tmp.dir,
          client,
          retryBaseDelayMs: 5,
        });
        expect(second.report.items[0]!.status).toBe("done");
        const s = emu.stats();
        expect(s.submits.total).toBe(cancelRunning === "signal" ? 1 : 2);
        if (cancelRunning === "signal")
          expect(second.report.items[0]!.requestId).toBe(running!.requestId);
        expect(s.billed.requests).toBe(1);
        expect(s.billed.usd).toBeCloseTo(second.report.totals.billedUsd, 6);
        await clipsDecode(tmp.dir);
      } finally {
        await emu.close();
        await tmp.cleanup();
      }
    });
  }

  for (const platformApi of ["on", "forbidden"] as const) {
    it(`a submit answer dropped after fal queued it: ${platformApi === "on" ? "found and re-attached, one billed request" : "platform API 403, flagged instead"}`, async () => {
      const emu = await startTestEmulator({
        render: "shared",
        slots: 2,
        progressLatencyMs: 100,
        platformApi,
        faults: { rules: [{ route: "submit", kind: "drop", count: 1 }] },
      });
      const tmp = await makeTempDir();
      try {
        const r = await runManifest({
          manifest: board(`drop-${platformApi}`, 2),
          runDir: tmp.dir,
          client: createHailuoClient({ emulatorUrl: emu.url }),
          retryBaseDelayMs: 5,
        });
        expect(r.exitCode).toBe(0);
        await waitFor(() => emu.stats().completed === emu.stats().submits.total);
        const s = emu.stats();
        const t = r.report.totals;
        if (platformApi === "on") {
          expect(s.submits.total).toBe(2);
          expect(t).toMatchObject({
            reconciledSubmits: 1,
            possibleDoubleChargeUsd: 0,
            billedRequests: 2,
          });
          expect(s.billed.usd).toBeCloseTo(t.billedUsd, 6);
        } else {
          expect(s.submits.total).toBe(3);
          expect(t).toMatchObject({ reconciledSubmits: 0, billedRequests: 2 });
          expect(t.possibleDoubleChargeUsd).toBeCloseTo(0.27, 6);
          expect(s.billed.usd).toBeCloseTo(t.billedUsd + t.possibleDoubleChargeUsd, 6);
        }
        await clipsDecode(tmp.dir);
      } finally {
        await emu.close();
        await tmp.cleanup();
      }
    });
  }

  it("two takes of one input both lose their submit answers: each is re-attached to a request of its own", async () => {
    const emu = await startTestEmulator({
      render: "shared",
      slots: 2,
      progressLatencyMs: 200,
      faults: { rules: [{ route: "submit", kind: "drop", count: 2 }] },
    });
    const tmp = await makeTempDir();
    try {
      const manifest = parseManifest(
        `name: twins\nscenes:\n  - id: twin\n    prompt: one input, two takes\n    takes: 2\n`,
        { file: "twins.yaml" },
      );
      const r = await runManifest({
        manifest,
        runDir: tmp.dir,
        client: createHailuoClient({ emulatorUrl: emu.url }),
        concurrency: 2,
        retryBaseDelayMs: 5,
      });
      expect(r.report.items.map((i) => i.status)).toEqual(["done", "done"]);
      expect(new Set(r.report.items.map((i) => i.requestId)).size).toBe(2);
      expect(r.report.totals).toMatchObject({
        reconciledSubmits: 2,
        possibleDoubleChargeUsd: 0,
        billedRequests: 2,
      });
      expect(emu.stats().submits.total).toBe(2);
      expect(emu.stats().billed.usd).toBeCloseTo(r.report.totals.billedUsd, 6);
      await clipsDecode(tmp.dir);
    } finally {
      await emu.close();
      await tmp.cleanup();
    }
  });
});
