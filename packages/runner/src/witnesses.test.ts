import { readFile, readdir, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { inputHash } from "@hailuo/emulator";
import { decodeErrors } from "@hailuo/test-utils";
import { planRun, runManifest, type RunOptions } from "./index.js";
import { board, expectMoneyFacts, runFixture } from "./test-money.js";

// A journal cut short (restored from an old copy, truncated by a tool) loses every record of some
// paid clips. The clips themselves, named by request id, and fal's request list still say what
// was paid: a resume must believe them before it submits anything.

describe("the journal is not the only witness", () => {
  const fx = runFixture();
  const start = (platformApi: "on" | "forbidden") => fx.restart({ platformApi });
  const opts = (o: Partial<RunOptions> & Pick<RunOptions, "manifest">) =>
    fx.opts({ concurrency: 1, priceUsdPerSecond: 0.045, ...o });

  /** Runs four scenes, then drops every journal record of scenes s2 and s3 (a journal cut short or restored from an old copy). */
  async function runThenCut(name: string): Promise<void> {
    const manifest = board(name, 4);
    expect((await runManifest(opts({ manifest }))).exitCode).toBe(0);
    const lost = planRun(manifest)
      .slice(2)
      .map((p) => p.key);
    const lines = (await readFile(join(fx.dir, "journal.jsonl"), "utf8")).split("\n");
    await writeFile(
      join(fx.dir, "journal.jsonl"),
      lines.filter((l) => !lost.some((k) => l.includes(k))).join("\n"),
    );
  }

  it("clips whose records were lost are adopted from disk, confirmed on fal's request list: nothing is paid twice", async () => {
    await start("on");
    await runThenCut("cut");
    const warnings: string[] = [];
    const again = await runManifest(
      opts({
        manifest: board("cut", 4),
        onEvent: (e) => e.type === "warning" && warnings.push(e.message),
      }),
    );
    expect(
      warnings.filter(
        (w) => w.includes("adopted the paid clip") && w.includes("confirmed on fal's request list"),
      ),
      warnings.join("\n"),
    ).toHaveLength(2);
    expect(again.report.items.map((i) => i.status)).toEqual([
      "cached",
      "cached",
      "cached",
      "cached",
    ]);
    expect(again.report.totals).toMatchObject({ billedRequests: 4, thisRunBilledUsd: 0 });
    expect(again.report.caveats).toEqual([]);
    await expectMoneyFacts(fx.emu, again.report, fx.dir, { submitsPerTake: [1, 1, 1, 1] });
  });

  it("without fal's request list the clips are still adopted, and the report says their cost is the file's word", async () => {
    await start("forbidden");
    await runThenCut("cutblind");
    const again = await runManifest(opts({ manifest: board("cutblind", 4) }));
    expect(again.report.items.map((i) => i.status)).toEqual([
      "cached",
      "cached",
      "cached",
      "cached",
    ]);
    expect(again.report.caveats.map((c) => `${c.kind} ${c.scene}`)).toEqual([
      "clip_recovered s2",
      "clip_recovered s3",
    ]);
    await expectMoneyFacts(fx.emu, again.report, fx.dir, { submitsPerTake: [1, 1, 1, 1] });
  });

  it("a generation with neither records nor a clip is found on fal's request list and downloaded, not submitted again", async () => {
    await start("on");
    await runThenCut("cutgone");
    const s3 = (await readdir(join(fx.dir, "clips"))).find((f) => f.startsWith("s3-"))!;
    await unlink(join(fx.dir, "clips", s3));
    const warnings: string[] = [];
    const again = await runManifest(
      opts({
        manifest: board("cutgone", 4),
        onEvent: (e) => e.type === "warning" && warnings.push(e.message),
      }),
    );
    expect(warnings.some((w) => w.includes("s3") && w.includes("re-attached"))).toBe(true);
    expect(again.report.items.map((i) => i.status)).toEqual(["cached", "cached", "cached", "done"]);
    expect(again.report.totals).toMatchObject({ billedRequests: 4, possibleDoubleChargeUsd: 0 });
    expect(fx.emu.stats().downloads).toBe(5);
    await expectMoneyFacts(fx.emu, again.report, fx.dir, { submitsPerTake: [1, 1, 1, 1] });
  });

  // What a witness cannot vouch for.
  const removeClip = async (scene: string) =>
    unlink(
      join(
        fx.dir,
        "clips",
        (await readdir(join(fx.dir, "clips"))).find((f) => f.startsWith(`${scene}-`))!,
      ),
    );

  it("an adopted clip that goes missing is downloaded again from fal's result, not paid again", async () => {
    await runThenCut("readopt");
    await runManifest(opts({ manifest: board("readopt", 4) }));
    await removeClip("s3");
    const again = await runManifest(opts({ manifest: board("readopt", 4) }));
    expect(again.report.items.map((i) => i.status)).toEqual(["cached", "cached", "cached", "done"]);
    await expectMoneyFacts(fx.emu, again.report, fx.dir, { submitsPerTake: [1, 1, 1, 1] });
  });

  it("a clip adopted by its file name alone that goes missing fails the scene, never submits it again", async () => {
    await fx.restart({ platformApi: "forbidden" });
    await runThenCut("byname");
    await runManifest(opts({ manifest: board("byname", 4) }));
    await removeClip("s3");
    const again = await runManifest(opts({ manifest: board("byname", 4) }));
    expect(again.report.items[3]).toMatchObject({
      status: "failed",
      errorCode: "clip_unrecoverable",
      unsaved: true,
    });
    await expectMoneyFacts(fx.emu, again.report, fx.dir, { submitsPerTake: [1, 1, 1, 1] });
  });

  it.each(["on", "forbidden"] as const)(
    "a clip left by an edited prompt is not adopted for the new prompt (request list %s)",
    async (platformApi) => {
      await fx.restart({ platformApi });
      await runThenCut("edited");
      const edited = board("edited", 4);
      edited.scenes[2]!.prompt = "edited scene 2, changed";
      const warnings: string[] = [];
      const again = await runManifest(
        opts({
          manifest: edited,
          onEvent: (e) => e.type === "warning" && warnings.push(e.message),
        }),
      );
      expect(warnings.some((w) => w.includes("s2-") && w.includes("not usable"))).toBe(true);
      expect(again.report.items.map((i) => i.status)).toEqual([
        "cached",
        "cached",
        "done",
        "cached",
      ]);
      const [s2] = planRun(edited).slice(2);
      expect(fx.emu.stats().submits.byInput[inputHash(s2!.input)]).toBe(1);
      // The old clip was paid for and is no generation's now: named, and the bill is the report plus it.
      expect(again.report.caveats.filter((c) => c.kind === "clip_unaccounted")).toEqual([
        expect.objectContaining({ message: expect.stringContaining("clips/s2-") }),
      ]);
      expect(fx.emu.stats().billed.usd).toBeCloseTo(again.report.totals.billedUsd + 0.27, 6);
      for (const f of await readdir(join(fx.dir, "clips")))
        expect(await decodeErrors(join(fx.dir, "clips", f)), f).toBe("");
    },
  );
});
