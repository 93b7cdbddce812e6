import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { planRun, runManifest, type RunOptions } from "./index.js";
import { board, expectMoneyFacts, runFixture } from "./test-money.js";

// A journal damaged on disk (an edit, bit rot, a bad copy) must not move money: records lost in a
// damaged line are inferred from the ones around them where they can be, the report names the
// amounts it cannot vouch for, and a line stored twice counts once.

describe("a damaged journal", () => {
  const fx = runFixture({ slots: 4 });
  const opts = (o: Partial<RunOptions> & Pick<RunOptions, "manifest">) =>
    fx.opts({ concurrency: 1, ...o });
  const journal = () => join(fx.dir, "journal.jsonl");

  /** Runs four scenes, then rewrites the journal line `t` of scene s1 with `edit`; returns its line number. */
  async function runThenEdit(
    name: string,
    t: string,
    edit: (line: string) => string[],
  ): Promise<number> {
    const manifest = board(name, 4);
    expect((await runManifest(opts({ manifest }))).exitCode).toBe(0);
    const key = planRun(manifest)[1]!.key;
    const lines = (await readFile(journal(), "utf8")).split("\n");
    const i = lines.findIndex((l) => l.includes(`"t":"${t}"`) && l.includes(key));
    lines.splice(i, 1, ...edit(lines[i]!));
    await writeFile(journal(), lines.join("\n"));
    return i + 1;
  }

  it("a corrupted 'completed' line: the clip's 'done' still proves it billed; the report equals the bill and names the line", async () => {
    const line = await runThenEdit("lostcompleted", "completed", (l) => [
      l.replace('"requestId":', '"requestId"#').replace('"videoUrl"', "videoUrl"),
    ]);
    const warnings: string[] = [];
    const again = await runManifest(
      opts({
        manifest: board("lostcompleted", 4),
        onEvent: (e) => e.type === "warning" && warnings.push(e.message),
      }),
    );
    expect(warnings.find((w) => w.includes(`line ${line} damaged`))).toBeDefined();
    expect(warnings.join("\n")).not.toContain("crash");
    expect(again.report.totals).toMatchObject({
      billedRequests: 4,
      billedSeconds: 24,
      possibleDoubleChargeUsd: 0,
    });
    expect(again.report.caveats).toEqual([
      expect.objectContaining({ kind: "journal_damaged", line, scene: "s1", take: 1 }),
    ]);
    expect(again.report.items[1]!.caveat).toContain(
      `journal line ${line} is damaged (a "completed" record of s1#1`,
    );
    await expectMoneyFacts(fx.emu, again.report, fx.dir, { submitsPerTake: [1, 1, 1, 1] });
  });

  it("a corrupted 'submitted' line: its outcome names the request, so no phantom double charge", async () => {
    await runThenEdit("lostsubmitted", "submitted", (l) => [
      l.replace('"handle"', '"hand\u0000le"'),
    ]);
    const again = await runManifest(opts({ manifest: board("lostsubmitted", 4) }));
    expect(again.report.totals).toMatchObject({ billedRequests: 4, possibleDoubleChargeUsd: 0 });
    expect(again.report.ambiguousSubmits).toEqual([]);
    expect(again.report.caveats.map((c) => c.scene)).toEqual(["s1"]);
    await expectMoneyFacts(fx.emu, again.report, fx.dir, { submitsPerTake: [1, 1, 1, 1] });
  });

  it("a line stored twice counts once: no phantom double charge, and the run says so", async () => {
    await runThenEdit("twice", "submitting", (l) => [l, l]);
    const warnings: string[] = [];
    const again = await runManifest(
      opts({
        manifest: board("twice", 4),
        onEvent: (e) => e.type === "warning" && warnings.push(e.message),
      }),
    );
    expect(warnings).toContain("journal has 1 line(s) stored twice; each record counted once");
    expect(again.report.totals).toMatchObject({ billedRequests: 4, possibleDoubleChargeUsd: 0 });
    expect(again.report.ambiguousSubmits).toEqual([]);
    expect(again.report.caveats).toEqual([]);
    await expectMoneyFacts(fx.emu, again.report, fx.dir, { submitsPerTake: [1, 1, 1, 1] });
  });

  it("a damaged line that names no generation puts the folder's totals under a caveat", async () => {
    await runThenEdit("nameless", "done", (l) => [l, "}{ garbage"]);
    const again = await runManifest(opts({ manifest: board("nameless", 4) }));
    expect(again.report.caveats).toEqual([
      expect.objectContaining({
        kind: "journal_damaged",
        message: expect.stringContaining("the folder's totals cannot be vouched for"),
      }),
    ]);
    expect(again.report.caveats[0]!.scene).toBeUndefined();
    await expectMoneyFacts(fx.emu, again.report, fx.dir, { submitsPerTake: [1, 1, 1, 1] });
  });
});
