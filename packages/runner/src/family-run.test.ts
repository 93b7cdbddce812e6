import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeErrors, holdableClock, waitFor } from "@hailuo/test-utils";
import {
  previewRun,
  readJournal,
  readRunReport,
  runManifest,
  writePick,
  type RunEvent,
  type RunReport,
  type StoredRecord,
} from "./index.js";
import { runFixture } from "./test-money.js";
import { I2V_02, SEED, T2V_23, mixedManifest, psnr, psnrs } from "./test-family.js";

// The mixed storyboard on the emulator over real HTTP: every endpoint at its own price,
// a chain of continuing scenes keyed by the clip they continue, real frames compared by PSNR.

/** The account's prices on this emulator: none of them the list price, so each is asked for. */
const PRICES = { seed: 0.05, [I2V_02]: 0.06, [T2V_23]: 0.3 };

const journalOf = async (dir: string) => (await readJournal(join(dir, "journal.jsonl"))).records;
const submitsPerKey = (records: StoredRecord[]) => {
  const n = new Map<string, number>();
  for (const r of records) if (r.t === "submitting") n.set(r.key, (n.get(r.key) ?? 0) + 1);
  return n;
};
const row = (report: RunReport, scene: string, take = 1) =>
  report.items.find((i) => i.scene === scene && i.take === take)!;

describe("a mixed storyboard of the family", () => {
  const fx = runFixture();

  it("runs every endpoint at its own price, continues scenes frame for frame, and after another pick upstream makes exactly its dependents again", async () => {
    const held = holdableClock();
    await fx.restart({
      slots: 4,
      progressLatencyMs: 50,
      priceUsdPerSecond: PRICES.seed,
      unitPricesUsd: { [I2V_02]: PRICES[I2V_02], [T2V_23]: PRICES[T2V_23] },
      clock: held.clock,
    });
    const manifest = await mixedManifest(join(fx.dir, "in"));
    const runDir = join(fx.dir, "run");
    const events: RunEvent[] = [];
    // Every generation stands still until released: what is out by then went without waiting.
    held.hold();
    const running = runManifest(
      fx.opts({ manifest, runDir, concurrency: 3, onEvent: (e) => events.push(e) }),
    );
    await waitFor(() => fx.emu.stats().submits.total === 3);
    // Independent scenes never wait behind a chain (nor take its slots): boat and night are out
    // beside dawn, while the scenes continuing dawn wait, holding nothing.
    const out = (await journalOf(runDir)).flatMap((r) => (r.t === "submitting" ? [r.scene] : []));
    expect(out.sort()).toEqual(["boat", "dawn", "night"]);
    held.release();
    const run1 = await running;
    expect(run1.exitCode).toBe(0);
    const r1 = run1.report;
    expect(r1.items.map((i) => [i.scene, i.take, i.status])).toEqual([
      ["dawn", 1, "done"],
      ["gull", 1, "done"],
      ["gull", 2, "done"],
      ["boat", 1, "done"],
      ["night", 1, "done"],
      ["wake", 1, "done"],
    ]);
    // Each endpoint at the price fal's pricing API quoted for it.
    expect(r1.items.map((i) => i.costUsd)).toEqual([0.5, 0.36, 0.36, 0.36, 0.3, 0.36]);
    const stats = fx.emu.stats();
    expect(stats.byEndpoint[SEED]!.billed.usd).toBeCloseTo(0.5, 6);
    expect(stats.byEndpoint[I2V_02]!.billed.usd).toBeCloseTo(4 * 0.36, 6);
    expect(stats.byEndpoint[T2V_23]!.billed.usd).toBeCloseTo(0.3, 6);
    expect(r1.totals.billedUsd).toBeCloseTo(stats.billed.usd, 6);
    expect(r1.totals.billedUsd).toBeCloseTo(2.24, 6);
    // Submits per scene-take: one each (gull's two takes are one body sent twice: fal takes no
    // seed, so a take is the same input asked again).
    const records = await journalOf(runDir);
    expect([...submitsPerKey(records).values()]).toEqual([1, 1, 1, 1, 1, 1]);
    expect(stats.submits.total).toBe(6);
    expect(Object.values(stats.submits.byInput).sort()).toEqual([1, 1, 1, 1, 2]);
    // Uploads by content: the two images, dawn's last frame once for both takes of gull, gull's.
    expect(stats.uploads.completed).toBe(4);
    expect(records.filter((r) => r.t === "uploaded")).toHaveLength(4);
    for (const i of r1.items)
      expect(await decodeErrors(join(runDir, i.file!)), `${i.file} decodes`).toBe("");

    // Continuity, pixel by pixel: a continuing scene starts on its source's last frame.
    const clip = (scene: string, take = 1) => join(runDir, row(r1, scene, take).file!);
    const first = (c: string) => ({ clip: c, frame: "first" as const });
    const last = (c: string) => ({ clip: c, frame: "last" as const });
    const images = join(fx.dir, "in", "images");
    const db = await psnrs([
      [first(clip("gull", 1)), last(clip("dawn"))],
      [first(clip("gull", 2)), last(clip("dawn"))],
      [first(clip("wake")), last(clip("gull", 1))],
      // The image scene starts on its image and ends on its end image.
      [first(clip("boat")), join(images, "start.png")],
      [last(clip("boat")), join(images, "end.png")],
      // And, so the measure can fail: its first frame is not its end image.
      [first(clip("boat")), join(images, "end.png")],
    ]);
    expect(
      db.slice(0, 5).every((d) => d >= 35),
      `PSNR ${db.join(", ")} dB`,
    ).toBe(true);
    expect(db[5]).toBeLessThan(35);

    // Nothing regenerates without a command: the folder as it stands needs nothing.
    const still = await previewRun(runDir, manifest, {
      usdPerSecond: PRICES.seed,
      unitPricesUsd: { [I2V_02]: PRICES[I2V_02] },
    });
    expect([still.toSubmit.length, still.regenerate.length, still.reused]).toEqual([0, 0, 6]);

    // Another pick upstream: wake continues gull, now from take 2.
    await writePick(runDir, "gull", 2);
    const preview = await previewRun(runDir, manifest, {
      usdPerSecond: PRICES.seed,
      unitPricesUsd: { [I2V_02]: PRICES[I2V_02] },
    });
    expect(preview.toSubmit.map((i) => `${i.sceneId}#${i.take}`)).toEqual(["wake#1"]);
    expect(preview.regenerate.map((r) => [r.item.sceneId, r.reason])).toEqual([
      ["wake", "its first frame is now the last frame of gull#2 (another take upstream)"],
    ]);
    expect(preview.estimateUsd).toBe(0.36);
    // Until then the folder's report keeps wake's clip for the film, saying it is stale.
    const picked = row(await readRunReport(runDir), "wake");
    expect(picked).toMatchObject({ status: "cached", file: row(r1, "wake").file, costUsd: 0 });
    expect(picked.stale).toContain("another take of gull, whose chosen take is now #2");

    const before = fx.emu.stats();
    const second = await runManifest(fx.opts({ manifest, runDir, concurrency: 2 }));
    expect(second.exitCode).toBe(0);
    const after = fx.emu.stats();
    // Exactly the dependent was submitted again, on its own endpoint; the rest reused.
    expect(after.submits.total - before.submits.total).toBe(1);
    expect(after.byEndpoint[I2V_02]!.submits - before.byEndpoint[I2V_02]!.submits).toBe(1);
    const r2 = second.report;
    expect(r2.items.map((i) => [i.scene, i.take, i.status])).toEqual([
      ["dawn", 1, "cached"],
      ["gull", 1, "cached"],
      ["gull", 2, "cached"],
      ["boat", 1, "cached"],
      ["night", 1, "cached"],
      ["wake", 1, "done"],
    ]);
    expect(row(r2, "wake").key).not.toBe(row(r1, "wake").key);
    expect(row(r2, "wake").stale).toBeUndefined();
    expect(row(r2, "wake").file).not.toBe(row(r1, "wake").file);
    expect(r2.totals.thisRunBilledUsd).toBeCloseTo(0.36, 6);
    expect(r2.totals.billedUsd).toBeCloseTo(after.billed.usd, 6);
    expect([...submitsPerKey(await journalOf(runDir)).values()].every((n) => n === 1)).toBe(true);
    const wake2 = join(runDir, row(r2, "wake").file!);
    expect(await decodeErrors(wake2)).toBe("");
    expect(await psnr(first(wake2), last(clip("gull", 2)))).toBeGreaterThanOrEqual(35);
    // The report read back from the folder says the same (the chosen source, the new key).
    const fromFolder = await readRunReport(runDir);
    expect(fromFolder.items.map((i) => [i.key, i.file, i.costUsd])).toEqual(
      r2.items.map((i) => [i.key, i.file, i.costUsd]),
    );
    expect(
      events.filter((e) => e.type === "item" && e.detail?.startsWith("uploaded")),
    ).toHaveLength(4);
    // Two runs of four endpoints' renders, PSNRs and a pick: heavier than one money test.
  }, 90_000);
});
