import { readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import { startFaultyGateway, waitFor } from "@hailuo/test-utils";
import { readRunReport, runManifest, type RunOptions } from "./index.js";
import { board, expectMoneyFacts, runFixture } from "./test-money.js";

// Money where the run's knowledge ends: a price fal will not confirm, and submits whose answers
// are lost while fal's request list cannot be read. Each ends with the three money facts.

describe("a price fal cannot confirm", () => {
  // The account pays twice the list price, and its key has no Platform API scope.
  const fx = runFixture({ priceUsdPerSecond: 0.09, platformApi: "forbidden" });
  const opts = (o: Partial<RunOptions> = {}) => fx.opts({ manifest: board("price", 4), ...o });

  it("a budget at an unconfirmed price is refused before anything is sent", async () => {
    const err = await runManifest(opts({ budgetUsd: 1.08 })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "price_unknown", retryable: false });
    expect((err as Error).message).toContain("HTTP 403");
    expect((err as Error).message).toContain("--price USD_PER_SECOND");
    expect(fx.emu.stats().submits.total).toBe(0);
  });

  it("the account's price given by the caller: the budget holds and the report equals the bill", async () => {
    const refused = await runManifest(opts({ budgetUsd: 1.08, priceUsdPerSecond: 0.09 })).catch(
      (e: unknown) => e,
    );
    expect(refused).toMatchObject({ code: "budget" });
    const done = await runManifest(opts({ budgetUsd: 2.16, priceUsdPerSecond: 0.09 }));
    expect(done.report.totals.billedUsd).toBeCloseTo(2.16, 6);
    expect(done.report.caveats).toEqual([]);
    await expectMoneyFacts(fx.emu, done.report, fx.dir, { submitsPerTake: [1, 1, 1, 1] });
  });

  it("without a budget the run goes on at the list price, warns before spending, and the report says its amounts are not verified", async () => {
    const events: string[] = [];
    const done = await runManifest(
      opts({
        onEvent: (e) => events.push(e.type === "warning" ? `warning: ${e.message}` : e.type),
      }),
    );
    const warned = events.findIndex((e) => e.startsWith("warning: price not verified"));
    expect(warned).toBeGreaterThanOrEqual(0);
    expect(warned).toBeLessThan(events.indexOf("plan"));
    expect(done.report.caveats).toEqual([
      expect.objectContaining({
        kind: "price_unverified",
        message: expect.stringContaining("$0.045/s, the list price"),
      }),
    ]);
    // The unverifiable part, named: the report counted $0.27 a clip, fal billed $0.54.
    expect(done.report.totals.billedUsd).toBeCloseTo(1.08, 6);
    expect(fx.emu.stats().billed.usd).toBeCloseTo(2.16, 6);
    expect((await readRunReport(fx.dir)).caveats.map((c) => c.kind)).toEqual(["price_unverified"]);
  });

  it("--assume-list-price budgets at the list price, and the report still marks it", async () => {
    const done = await runManifest(opts({ budgetUsd: 1.08, assumeListPrice: true }));
    expect(done.exitCode).toBe(0);
    expect(done.report.caveats.map((c) => c.kind)).toEqual(["price_unverified"]);
    expect(fx.emu.stats().submits.total).toBe(4);
  });
});

describe("submits whose answers keep getting lost while fal's request list is refused", () => {
  const fx = runFixture({ platformApi: "forbidden" });

  it("a clip is resent once, then the run stops with answers_lost instead of paying on (--retries 8)", async () => {
    const gw = await startFaultyGateway(fx.emu.url);
    try {
      gw.failNextSubmits("502", 100);
      const client = createHailuoClient({ emulatorUrl: gw.url, submitRetryBaseDelayMs: 10 });
      const err = await runManifest({
        manifest: board("lost", 1),
        runDir: fx.dir,
        client,
        retries: 8,
        retryBaseDelayMs: 10,
        priceUsdPerSecond: 0.045,
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "answers_lost", lostSubmits: 2, retryable: false });
      expect((err as Error).message).toContain("--resend-lost 2");
      // Both lost submits were queued and run by fal: billed, and flagged in the report.
      await waitFor(() => fx.emu.stats().completed === 2);
      const report = await readRunReport(fx.dir);
      expect(report.totals).toMatchObject({ billedUsd: 0, possibleDoubleChargeUsd: 0.54 });
      await expectMoneyFacts(fx.emu, report, fx.dir, { submitsPerTake: [2], flaggedAndBilled: 2 });

      // Resuming does not pay a third time unless told to.
      const again = await runManifest({
        runDir: fx.dir,
        client,
        retryBaseDelayMs: 10,
        priceUsdPerSecond: 0.045,
      }).catch((e: unknown) => e);
      expect(again).toMatchObject({ code: "answers_lost" });
      expect(fx.emu.stats().submits.total).toBe(2);
    } finally {
      await gw.close();
    }
  });
});

describe("run.json is input too", () => {
  const fx = runFixture();

  it("a hand-edited run.json (an escaping scene id, an empty prompt) is refused on resume before any submit, naming line and field", async () => {
    const client = createHailuoClient({ emulatorUrl: fx.emu.url });
    const first = await runManifest({ manifest: board("edited", 3), runDir: fx.dir, client });
    const path = join(fx.dir, "run.json");
    const text = await readFile(path, "utf8");
    // The id of s1 escapes the folder, and its prompt changed (a new, unpaid generation).
    const edited = text
      .replace('"id": "s1"', '"id": "../../escape"')
      .replace('"prompt": "edited scene 1"', '"prompt": "edited scene 1, changed"')
      .replace('"prompt": "edited scene 2"', '"prompt": " "');
    await writeFile(path, edited);
    const err = await runManifest({ runDir: fx.dir, client }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "manifest", retryable: false });
    const idLine = edited.split("\n").findIndex((l) => l.includes("../../escape")) + 1;
    expect((err as Error).message).toContain(`run.json:${idLine}`);
    expect((err as Error).message).toContain("manifest.scenes[1].id");
    expect((err as Error).message).toContain("manifest.scenes[2].prompt");
    expect(fx.emu.stats().submits.total).toBe(3);
    expect(await readdir(fx.dir)).not.toContain("escape");
    // Put back, the folder resumes as it was: nothing to pay for.
    await writeFile(path, text);
    const again = await runManifest({ runDir: fx.dir, client });
    expect(again.report.totals).toMatchObject({ cached: 3, thisRunBilledUsd: 0 });
    expect(first.exitCode).toBe(0);
    await expectMoneyFacts(fx.emu, again.report, fx.dir, { submitsPerTake: [1, 1, 1] });
  });

  it("run.json that is not JSON is a manifest error naming the file, not an internal one", async () => {
    const client = createHailuoClient({ emulatorUrl: fx.emu.url });
    await runManifest({ manifest: board("broken", 1), runDir: fx.dir, client });
    await writeFile(join(fx.dir, "run.json"), "{ not json");
    await expect(runManifest({ runDir: fx.dir, client })).rejects.toMatchObject({
      code: "manifest",
      message: expect.stringContaining("not valid JSON"),
    });
    expect(fx.emu.stats().submits.total).toBe(1);
  });
});

describe("a budget gives back only what it reserved", () => {
  // The first generation fails (COMPLETED without a video: not billed).
  const fx = runFixture({ slots: 2, progressLatencyMs: 600, faults: { generationErrorCount: 1 } });

  it("a request re-attached from an earlier process that ends without a video frees no room it never took", async () => {
    const manifest = board("giveback", 3);
    // Run 1 submits s0 only and is stopped while it generates: its request stays live.
    const ac = new AbortController();
    const first = await runManifest(
      fx.opts({
        manifest,
        concurrency: 1,
        only: (i) => i.sceneId === "s0",
        signal: ac.signal,
        onEvent: (e) => e.type === "item" && e.phase === "in_progress" && ac.abort(),
      }),
    );
    expect(
      first.exitCode,
      JSON.stringify(first.report.items.map((i) => [i.scene, i.status, i.error])),
    ).toBe(130);
    // The resume re-attaches s0, whose generation fails: it is submitted again, and with s1 that
    // fills $0.54; giving back s0's first request (reserved by run 1, not this run) would let s2 in.
    const second = await runManifest(fx.opts({ manifest, concurrency: 1, budgetUsd: 0.54 }));
    // Which scene the budget turns away depends on which reaches a slot last; that one does.
    expect(
      second.report.items.map((i) => `${i.status}${i.errorCode ? ` ${i.errorCode}` : ""}`).sort(),
    ).toEqual(["done", "done", "failed budget"]);
    expect(fx.emu.stats().submits.total).toBe(3);
    expect(fx.emu.stats().billed.usd).toBeCloseTo(0.54, 6);
    // s0's first request (run 1) failed unbilled; a scene done in this run was submitted once more.
    const perTake = second.report.items.map(
      (i) => (i.status === "done" ? 1 : 0) + (i.scene === "s0" ? 1 : 0),
    );
    await expectMoneyFacts(fx.emu, second.report, fx.dir, { submitsPerTake: perTake });
  });
});
