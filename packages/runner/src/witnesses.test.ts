import { readFile, readdir, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { planRun, runManifest, type RunOptions } from "./index.js";
import { board, expectMoneyFacts, runFixture } from "./test-money.js";

// A journal cut short (restored from an old copy, truncated by a tool) loses every record of some
// paid clips. The clips themselves, named by request id, and fal's request list still say what
// was paid: a resume must believe them before it submits anything.

describe("the journal is not the only witness", () => {
  const fx = runFixture();
  const start = (platformApi: "on" | "forbidden") => fx.restart({ platformApi });
  const opts = (o: Partial<RunOptions> & Pick<RunOptions, "manifest">) => fx.opts({ concurrency: 1, priceUsdPerSecond: 0.045, ...o });

  /** Runs four scenes, then drops every journal record of scenes s2 and s3 (a journal cut short or restored from an old copy). */
  async function runThenCut(name: string): Promise<void> {
    const manifest = board(name, 4);
    expect((await runManifest(opts({ manifest }))).exitCode).toBe(0);
    const lost = planRun(manifest).slice(2).map((p) => p.key);
    const lines = (await readFile(join(fx.dir, "journal.jsonl"), "utf8")).split("\n");
    await writeFile(join(fx.dir, "journal.jsonl"), lines.filter((l) => !lost.some((k) => l.includes(k))).join("\n"));
  }

  it("clips whose records were lost are adopted from disk, confirmed on fal's request list: nothing is paid twice", async () => {
    await start("on");
    await runThenCut("cut");
    const warnings: string[] = [];
    const again = await runManifest(opts({ manifest: board("cut", 4), onEvent: (e) => e.type === "warning" && warnings.push(e.message) }));
    expect(warnings.filter((w) => w.includes("adopted the paid clip") && w.includes("confirmed on fal's request list")), warnings.join("\n")).toHaveLength(2);
    expect(again.report.items.map((i) => i.status)).toEqual(["cached", "cached", "cached", "cached"]);
    expect(again.report.totals).toMatchObject({ billedRequests: 4, thisRunBilledUsd: 0 });
    expect(again.report.caveats).toEqual([]);
    await expectMoneyFacts(fx.emu, again.report, fx.dir, { submitsPerTake: [1, 1, 1, 1] });
  });

  it("without fal's request list the clips are still adopted, and the report says their cost is the file's word", async () => {
    await start("forbidden");
    await runThenCut("cutblind");
    const again = await runManifest(opts({ manifest: board("cutblind", 4) }));
    expect(again.report.items.map((i) => i.status)).toEqual(["cached", "cached", "cached", "cached"]);
    expect(again.report.caveats.map((c) => `${c.kind} ${c.scene}`)).toEqual(["clip_recovered s2", "clip_recovered s3"]);
    await expectMoneyFacts(fx.emu, again.report, fx.dir, { submitsPerTake: [1, 1, 1, 1] });
  });

  it("a generation with neither records nor a clip is found on fal's request list and downloaded, not submitted again", async () => {
    await start("on");
    await runThenCut("cutgone");
    const s3 = (await readdir(join(fx.dir, "clips"))).find((f) => f.startsWith("s3-"))!;
    await unlink(join(fx.dir, "clips", s3));
    const warnings: string[] = [];
    const again = await runManifest(opts({ manifest: board("cutgone", 4), onEvent: (e) => e.type === "warning" && warnings.push(e.message) }));
    expect(warnings.some((w) => w.includes("s3") && w.includes("re-attached"))).toBe(true);
    expect(again.report.items.map((i) => i.status)).toEqual(["cached", "cached", "cached", "done"]);
    expect(again.report.totals).toMatchObject({ billedRequests: 4, possibleDoubleChargeUsd: 0 });
    expect(fx.emu.stats().downloads).toBe(5);
    await expectMoneyFacts(fx.emu, again.report, fx.dir, { submitsPerTake: [1, 1, 1, 1] });
  });
});
