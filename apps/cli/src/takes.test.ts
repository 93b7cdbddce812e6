import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { readJournal } from "@hailuo/runner";
import { decodeErrors, holdableClock, waitFor } from "@hailuo/test-utils";
import { cli, cliFixture } from "./test-cli.js";

const json = async (file: string) => JSON.parse(await readFile(file, "utf8"));

// Takes to choose from, without a browser: pick, re-roll (budget, an edited prompt, Ctrl-C and resume), assemble.
describe("hailuo pick and reroll", () => {
  // The Ctrl-C test holds the emulator's clock: the re-roll is still generating when it is stopped.
  const gate = holdableClock();
  const fx = cliFixture({ progressLatencyMs: 1200, clock: gate.clock });
  afterEach(() => gate.release());

  it("picks a take, refuses a re-roll over the budget (nothing recorded), re-rolls with an edited prompt, and the film uses both choices", async () => {
    const file = join(fx.dir, "takes.yaml");
    await writeFile(
      file,
      "name: takes\ndefaults: { takes: 2 }\nthumbnails: { preview: none }\nscenes:\n  - id: one\n    prompt: takes scene one\n  - id: two\n    prompt: takes scene two\n",
    );
    const runDir = join(fx.dir, "takes-run");
    const env = { FAL_EMULATOR_URL: fx.emu.url };
    const before = fx.emu.stats();
    expect((await cli(["run", file, "--out", runDir, "--no-media"], env).done).code).toBe(0);

    const picked = await cli(["pick", runDir, "two", "2", "--json"], env).done;
    expect([picked.code, JSON.parse(picked.stdout)]).toEqual([
      0,
      { type: "picked", scene: "two", take: 2 },
    ]);
    expect(await json(join(runDir, "picks.json"))).toEqual({ version: 1, picks: { two: 2 } });
    const noTake = await cli(["pick", runDir, "two", "7"], env).done;
    expect([noTake.code, noTake.stderr.trim()]).toEqual([
      2,
      "hailuo: error [usage]: take 7 of two has no clip (no such take); takes with a clip: 1, 2",
    ]);

    const runJson = await readFile(join(runDir, "run.json"), "utf8");
    const over = await cli(
      [
        "reroll",
        runDir,
        "one",
        "--prompt",
        "takes scene one, at night",
        "--takes",
        "2",
        "--budget",
        "0.5",
      ],
      env,
    ).done;
    expect([over.code, over.stderr]).toEqual([
      2,
      expect.stringContaining(
        "[budget]: re-rolling one 2 time(s) costs up to $0.54, over the budget of $0.50; nothing was submitted or recorded",
      ),
    ]);
    expect(await readFile(join(runDir, "run.json"), "utf8")).toBe(runJson);

    const rolled = await cli(
      ["reroll", runDir, "one", "--prompt", "takes scene one, at night", "--no-media"],
      env,
    ).done;
    expect(rolled.code).toBe(0);
    expect(rolled.stderr).toContain("(nothing billed), 1 clip(s) to generate, at most $0.27\n");
    expect(rolled.stderr).toContain(
      "1 generated, 4 reused, 0 failed; emulated, nothing billed; at fal's price: this run $0.27, this folder $1.35",
    );
    // The edited prompt is recorded as a take of its own: the run stays explainable.
    const scene = (await json(join(runDir, "run.json"))).manifest.scenes[0];
    expect([
      scene.prompt,
      scene.rerolls.map((r: { take: number; prompt: string }) => [r.take, r.prompt]),
    ]).toEqual(["takes scene one", [[3, "takes scene one, at night"]]]);

    const assembled = await cli(["assemble", runDir], env).done;
    expect(assembled.code).toBe(0);
    const film = await json(join(runDir, "film.mp4.json"));
    expect(film.chapters.map((c: { scene: string; take: number }) => [c.scene, c.take])).toEqual([
      ["one", 3],
      ["two", 2],
    ]);
    const report = await json(join(runDir, "report.json"));
    expect(
      report.items
        .filter((i: { chosen?: boolean }) => i.chosen)
        .map((i: { scene: string; take: number }) => `${i.scene}#${i.take}`),
    ).toEqual(["one#3", "two#2"]);

    // Money: one submit per scene-take, the bill equals the report, every clip decodes.
    const after = fx.emu.stats();
    const fresh = Object.entries(after.submits.byInput)
      .filter(([k]) => !(k in before.submits.byInput))
      .map(([, n]) => n);
    expect(fresh.sort()).toEqual([1, 2, 2]);
    expect(after.billed.usd - before.billed.usd).toBeCloseTo(report.totals.billedUsd, 6);
    expect(report.totals.billedUsd).toBeCloseTo(5 * 0.27, 6);
    for (const i of report.items) expect(await decodeErrors(join(runDir, i.file))).toBe("");
  }, 90_000);

  it("a re-roll stopped by Ctrl-C with its request live is finished by resume: one submit, billed once", async () => {
    const file = join(fx.dir, "stop.yaml");
    await writeFile(file, "name: stop\nscenes:\n  - id: only\n    prompt: stopped reroll scene\n");
    const runDir = join(fx.dir, "stop-run");
    const env = { FAL_EMULATOR_URL: fx.emu.url };
    const before = fx.emu.stats();
    expect((await cli(["run", file, "--out", runDir, "--no-media"], env).done).code).toBe(0);
    gate.hold();
    const p = cli(
      ["reroll", runDir, "only", "--prompt", "stopped reroll scene, in the rain", "--no-media"],
      env,
    );
    const journal = join(runDir, "journal.jsonl");
    await waitFor(
      async () =>
        (await readJournal(journal)).records.filter((r) => r.t === "submitted").length === 2,
      20_000,
    );
    p.child.kill("SIGINT");
    const stopped = await p.done;
    gate.release();
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toContain("resume");
    const resumed = await cli(["resume", runDir, "--no-media"], env).done;
    expect(resumed.code).toBe(0);
    const report = await json(join(runDir, "report.json"));
    expect(
      report.items.map((i: { take: number; status: string; prompt: string }) => [
        i.take,
        i.status,
        i.prompt,
      ]),
    ).toEqual([
      [1, "cached", "stopped reroll scene"],
      [2, "done", "stopped reroll scene, in the rain"],
    ]);
    const after = fx.emu.stats();
    expect(
      Object.entries(after.submits.byInput)
        .filter(([k]) => !(k in before.submits.byInput))
        .map(([, n]) => n),
    ).toEqual([1, 1]);
    expect(after.billed.usd - before.billed.usd).toBeCloseTo(report.totals.billedUsd, 6);
    for (const i of report.items) expect(await decodeErrors(join(runDir, i.file))).toBe("");
  }, 120_000);
});
