import { readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import type { Emulator } from "@hailuo/emulator";
import { makeTempDir, startFaultyGateway, startTestEmulator, waitFor } from "@hailuo/test-utils";
import { readRunReport, runManifest, type RunOptions } from "./index.js";
import { board, expectMoneyFacts } from "./test-money.js";

// Money where the run's knowledge ends: a price fal will not confirm, and submits whose answers
// are lost while fal's request list cannot be read. Each ends with the three money facts.

describe("a price fal cannot confirm", () => {
  let emu: Emulator;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  beforeEach(async () => {
    // The account pays twice the list price, and its key has no Platform API scope.
    emu = await startTestEmulator({ render: "shared", priceUsdPerSecond: 0.09, platformApi: "forbidden" });
    tmp = await makeTempDir();
  });
  afterEach(async () => {
    await emu.close();
    await tmp.cleanup();
  });
  const opts = (o: Partial<RunOptions> = {}): RunOptions => ({ manifest: board("price", 4), runDir: tmp.dir, client: createHailuoClient({ emulatorUrl: emu.url }), retryBaseDelayMs: 10, ...o });

  it("a budget at an unconfirmed price is refused before anything is sent", async () => {
    const err = await runManifest(opts({ budgetUsd: 1.08 })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "price_unknown", retryable: false });
    expect((err as Error).message).toContain("HTTP 403");
    expect((err as Error).message).toContain("--price USD_PER_SECOND");
    expect(emu.stats().submits.total).toBe(0);
  });

  it("the account's price given by the caller: the budget holds and the report equals the bill", async () => {
    const refused = await runManifest(opts({ budgetUsd: 1.08, priceUsdPerSecond: 0.09 })).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: "budget" });
    const done = await runManifest(opts({ budgetUsd: 2.16, priceUsdPerSecond: 0.09 }));
    expect(done.report.totals.billedUsd).toBeCloseTo(2.16, 6);
    expect(done.report.caveats).toEqual([]);
    await expectMoneyFacts(emu, done.report, tmp.dir, { submitsPerTake: [1, 1, 1, 1] });
  });

  it("without a budget the run goes on at the list price, warns before spending, and the report says its amounts are not verified", async () => {
    const events: string[] = [];
    const done = await runManifest(opts({ onEvent: (e) => events.push(e.type === "warning" ? `warning: ${e.message}` : e.type) }));
    const warned = events.findIndex((e) => e.startsWith("warning: price not verified"));
    expect(warned).toBeGreaterThanOrEqual(0);
    expect(warned).toBeLessThan(events.indexOf("plan"));
    expect(done.report.caveats).toEqual([expect.objectContaining({ kind: "price_unverified", message: expect.stringContaining("$0.045/s, the list price") })]);
    // The unverifiable part, named: the report counted $0.27 a clip, fal billed $0.54.
    expect(done.report.totals.billedUsd).toBeCloseTo(1.08, 6);
    expect(emu.stats().billed.usd).toBeCloseTo(2.16, 6);
    expect((await readRunReport(tmp.dir)).caveats.map((c) => c.kind)).toEqual(["price_unverified"]);
  });

  it("--assume-list-price budgets at the list price, and the report still marks it", async () => {
    const done = await runManifest(opts({ budgetUsd: 1.08, assumeListPrice: true }));
    expect(done.exitCode).toBe(0);
    expect(done.report.caveats.map((c) => c.kind)).toEqual(["price_unverified"]);
    expect(emu.stats().submits.total).toBe(4);
  });
});

describe("submits whose answers keep getting lost while fal's request list is refused", () => {
  let emu: Emulator;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  beforeEach(async () => {
    emu = await startTestEmulator({ render: "shared", platformApi: "forbidden" });
    tmp = await makeTempDir();
  });
  afterEach(async () => {
    await emu.close();
    await tmp.cleanup();
  });

  it("a clip is resent once, then the run stops with answers_lost instead of paying on (--retries 8)", async () => {
    const gw = await startFaultyGateway(emu.url);
    try {
      gw.failNextSubmits("502", 100);
      const client = createHailuoClient({ emulatorUrl: gw.url, submitRetryBaseDelayMs: 10 });
      const err = await runManifest({ manifest: board("lost", 1), runDir: tmp.dir, client, retries: 8, retryBaseDelayMs: 10, priceUsdPerSecond: 0.045 }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "answers_lost", lostSubmits: 2, retryable: false });
      expect((err as Error).message).toContain("--resend-lost 2");
      // Both lost submits were queued and run by fal: billed, and flagged in the report.
      await waitFor(() => emu.stats().completed === 2);
      const report = await readRunReport(tmp.dir);
      expect(report.totals).toMatchObject({ billedUsd: 0, possibleDoubleChargeUsd: 0.54 });
      await expectMoneyFacts(emu, report, tmp.dir, { submitsPerTake: [2], flaggedAndBilled: 2 });

      // Resuming does not pay a third time unless told to.
      const again = await runManifest({ runDir: tmp.dir, client, retryBaseDelayMs: 10, priceUsdPerSecond: 0.045 }).catch((e: unknown) => e);
      expect(again).toMatchObject({ code: "answers_lost" });
      expect(emu.stats().submits.total).toBe(2);
    } finally {
      await gw.close();
    }
  });
});

describe("run.json is input too", () => {
  let emu: Emulator;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  beforeEach(async () => {
    emu = await startTestEmulator({ render: "shared" });
    tmp = await makeTempDir();
  });
  afterEach(async () => {
    await emu.close();
    await tmp.cleanup();
  });

  it("a hand-edited run.json (an escaping scene id, an empty prompt) is refused on resume before any submit, naming line and field", async () => {
    const client = createHailuoClient({ emulatorUrl: emu.url });
    const first = await runManifest({ manifest: board("edited", 3), runDir: tmp.dir, client });
    const path = join(tmp.dir, "run.json");
    const text = await readFile(path, "utf8");
    // The id of s1 escapes the folder, and its prompt changed (a new, unpaid generation).
    const edited = text.replace('"id": "s1"', '"id": "../../escape"').replace('"prompt": "edited scene 1"', '"prompt": "edited scene 1, changed"').replace('"prompt": "edited scene 2"', '"prompt": " "');
    await writeFile(path, edited);
    const err = await runManifest({ runDir: tmp.dir, client }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "manifest", retryable: false });
    const idLine = edited.split("\n").findIndex((l) => l.includes("../../escape")) + 1;
    expect((err as Error).message).toContain(`run.json:${idLine}`);
    expect((err as Error).message).toContain("manifest.scenes[1].id");
    expect((err as Error).message).toContain("manifest.scenes[2].prompt");
    expect(emu.stats().submits.total).toBe(3);
    expect(await readdir(tmp.dir)).not.toContain("escape");
    // Put back, the folder resumes as it was: nothing to pay for.
    await writeFile(path, text);
    const again = await runManifest({ runDir: tmp.dir, client });
    expect(again.report.totals).toMatchObject({ cached: 3, thisRunBilledUsd: 0 });
    expect(first.exitCode).toBe(0);
    await expectMoneyFacts(emu, again.report, tmp.dir, { submitsPerTake: [1, 1, 1] });
  });

  it("run.json that is not JSON is a manifest error naming the file, not an internal one", async () => {
    const client = createHailuoClient({ emulatorUrl: emu.url });
    await runManifest({ manifest: board("broken", 1), runDir: tmp.dir, client });
    await writeFile(join(tmp.dir, "run.json"), "{ not json");
    await expect(runManifest({ runDir: tmp.dir, client })).rejects.toMatchObject({ code: "manifest", message: expect.stringContaining("not valid JSON") });
    expect(emu.stats().submits.total).toBe(1);
  });
});
