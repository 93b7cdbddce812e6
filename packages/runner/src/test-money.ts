import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, expect } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import { inputHash, type Emulator, type EmulatorOptions } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import { decodeErrors, makeTempDir, startTestEmulator } from "@hailuo/test-utils";
import { planRun, readRunReport, type RunFile, type RunOptions, type RunReport } from "./index.js";

/** A storyboard of `n` one-take scenes whose prompts start with `name`. */
export const board = (name: string, n: number, extra = "") =>
  parseManifest(
    `name: ${name}\nscenes:\n${Array.from({ length: n }, (_, i) => `  - id: s${i}\n    prompt: ${name} scene ${i}\n`).join("")}${extra}`,
    { file: `${name}.yaml` },
  );

/**
 * The three facts every money test ends with: submits per scene-take, the emulator's bill equal
 * to the report (plus `flaggedAndBilled` ambiguous submits fal did run, at `usdEach`), every clip
 * on disk decoding completely. The run's report must also equal a replay of the whole journal.
 */
export async function expectMoneyFacts(
  emu: Emulator,
  report: RunReport,
  runDir: string,
  o: { submitsPerTake: number[]; flaggedAndBilled?: number; usdEach?: number },
): Promise<void> {
  const manifest = (JSON.parse(await readFile(join(runDir, "run.json"), "utf8")) as RunFile)
    .manifest;
  const perTake = planRun(manifest).map(
    (p) => emu.stats().submits.byInput[inputHash(p.input)] ?? 0,
  );
  expect(perTake, "submits per scene-take").toEqual(o.submitsPerTake);
  const billed = emu.stats().billed;
  expect(billed.usd, "the emulator's bill").toBeCloseTo(
    report.totals.billedUsd + (o.usdEach ?? 0.27) * (o.flaggedAndBilled ?? 0),
    6,
  );
  const clips = await readdir(join(runDir, "clips"));
  for (const f of clips.filter((c) => c.endsWith(".mp4")))
    expect(await decodeErrors(join(runDir, "clips", f)), `${f} decodes`).toBe("");
  expect(
    clips.filter((c) => !c.endsWith(".mp4")),
    "nothing but clips in clips/",
  ).toEqual([]);
  // The run replays only the generations it touched for its report: every row must still be what
  // a replay of the whole journal says (all but the status, which says "reused" for this run).
  const fromJournal = await readRunReport(runDir);
  const facts = (r: RunReport) => r.items.map(({ status: _s, ...row }) => row);
  expect(facts(report)).toEqual(facts(fromJournal));
  expect(report.totals.billedUsd).toBe(fromJournal.totals.billedUsd);
}

/**
 * A fresh emulator (`options`) and run folder for each test of the enclosing `describe`, and the
 * run options every money test starts from (fast retries, this emulator, this folder).
 */
export function runFixture(options: EmulatorOptions = {}) {
  let emu: Emulator | undefined;
  let tmp: Awaited<ReturnType<typeof makeTempDir>> | undefined;
  beforeEach(async () => {
    emu = await startTestEmulator({ render: "shared", ...options });
    tmp = await makeTempDir();
  });
  afterEach(async () => {
    await emu?.close();
    await tmp?.cleanup();
  });
  const fx = {
    get emu(): Emulator {
      return emu!;
    },
    get dir(): string {
      return tmp!.dir;
    },
    /** Swaps this test's emulator for one started with other options. */
    async restart(other: EmulatorOptions): Promise<Emulator> {
      await emu?.close();
      return (emu = await startTestEmulator({ render: "shared", ...other }));
    },
    /** Run options into this test's folder against its emulator, with `o` on top. */
    opts: (o: Partial<RunOptions> = {}): RunOptions => ({
      runDir: tmp!.dir,
      client: createHailuoClient({ emulatorUrl: emu!.url, submitRetryBaseDelayMs: 10 }),
      retryBaseDelayMs: 10,
      ...o,
    }),
  };
  return fx;
}
