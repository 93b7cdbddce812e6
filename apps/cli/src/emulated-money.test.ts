import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import type { Emulator } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import { runMediaStage } from "@hailuo/publish";
import { runManifest } from "@hailuo/runner";
import { decodeErrors, makeTempDir, startTestEmulator } from "@hailuo/test-utils";
import { cli } from "./test-cli.js";

// Money shown for a run says whether it was billed: an emulator bills nothing, and a newcomer
// must not think they paid; a run recorded against fal reads as it always did.
describe("money of emulated and billed runs", () => {
  let emu: Emulator;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  beforeAll(async () => {
    emu = await startTestEmulator({ slots: 2, progressLatencyMs: 100, render: "shared" });
    tmp = await makeTempDir();
  });
  afterAll(async () => {
    await emu?.close();
    await tmp?.cleanup();
  });
  const text = (tag: string) =>
    `name: ${tag}\nscenes:\n  - id: a\n    prompt: ${tag} money words scene\n    duration: 6\nthumbnails: { preview: none, sheet_columns: 0 }\n`;
  const pageText = (html: string) => html.replace(/<[^>]*>/g, " ").replaceAll("&#39;", "'");

  it("a CLI run against the emulator says emulated, nothing billed: summary, status, report and page", async () => {
    const file = join(tmp.dir, "emulated.yaml");
    await writeFile(file, text("emulated"));
    const runDir = join(tmp.dir, "emulated-run");
    const env = { FAL_EMULATOR_URL: emu.url };
    const before = emu.stats();
    const run = await cli(["run", file, "--out", runDir], env).done;
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(
      "; emulated, nothing billed; at fal's price: this run $0.27, this folder $0.27 (1 clip(s), 6 s)",
    );
    expect(run.stderr).toMatch(/^price: .*, as the emulator answers it \(nothing is billed\)$/m);
    expect(run.stderr).toMatch(
      /to generate for \$0\.27 at fal's price \(emulated, nothing billed\)/,
    );
    expect(run.stderr).not.toMatch(/billed: this run|\$0\.27 billed/);

    const report = JSON.parse(await readFile(join(runDir, "report.json"), "utf8"));
    expect(report.amounts).toBe("emulated");
    // The amount is still fal's price for the clip, equal to what the emulator counted.
    expect(emu.stats().billed.usd - before.billed.usd).toBeCloseTo(report.totals.billedUsd, 6);
    expect(emu.stats().submits.total - before.submits.total).toBe(1);
    expect(await decodeErrors(join(runDir, report.items[0].file))).toBe("");
    const csv = (await readFile(join(runDir, "report.csv"), "utf8")).split("\n");
    expect(csv[0]).toMatch(/,prompt,billed$/);
    expect(csv[1]).toMatch(/,no \(emulated at fal's price\)$/);

    const status = await cli(["status", runDir], env).done;
    expect(status.stdout).toContain("; emulated, nothing billed ($0.27 at fal's price)\n");

    const page = pageText(await readFile(join(runDir, "index.html"), "utf8"));
    expect(page).toContain("nothing was billed");
    expect(page).toMatch(/\$0\.27 emulated, nothing billed \(at fal's price\)/);
    expect(page).not.toMatch(/\$0\.27 billed/);
  }, 30_000);

  it("a run recorded against fal reads billed: status, report and page", async () => {
    const manifest = parseManifest(text("billed"), { file: "billed.yaml" });
    const runDir = join(tmp.dir, "billed-run");
    // The requests go to the emulator, but run.json says fal: what every output reads is run.json.
    const client = createHailuoClient({ emulatorUrl: emu.url });
    const result = await runManifest({ manifest, runDir, client, backend: { kind: "fal" } });
    expect(result.exitCode).toBe(0);
    const report = JSON.parse(await readFile(join(runDir, "report.json"), "utf8"));
    expect(report.amounts).toBe("billed");
    expect((await readFile(join(runDir, "report.csv"), "utf8")).split("\n")[0]).toBe(
      "scene,take,status,request_id,attempts,seconds,cost_usd,possible_double_charge_usd,file,error,prompt",
    );

    const status = await cli(["status", runDir]).done;
    expect(status.stdout).toContain(" not started; $0.27 billed\n");
    expect(status.stdout).not.toContain("emulated");

    await runMediaStage(runDir, manifest, { thumbnails: false });
    const page = pageText(await readFile(join(runDir, "index.html"), "utf8"));
    expect(page).toMatch(/\$0\.27 billed/);
    expect(page).not.toMatch(/emulat/);
  }, 30_000);
});
