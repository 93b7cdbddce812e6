import { execFile } from "node:child_process";
import { copyFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { loadManifest, parseManifest } from "@hailuo/manifest";
import { decodeErrors } from "@hailuo/test-utils";
import {
  readJournal,
  runManifest,
  type RunEvent,
  type RunReport,
  type StoredRecord,
} from "./index.js";
import { runFixture } from "./test-money.js";
import { I2V_02, T2V_23, makeImages, psnr } from "./test-family.js";

// What can go wrong around a scene's images: a kill between an upload and its submit, an image
// changed after the manifest was checked, a source scene that ends without a clip. Each ends with
// the money facts: submits per scene-take, the bill equal to the report, every clip decoding.

const require = createRequire(import.meta.url);
const records = async (dir: string) => (await readJournal(join(dir, "journal.jsonl"))).records;
const keyOf = (report: RunReport, scene: string) =>
  report.items.find((i) => i.scene === scene)!.key;
// Requests fal queued for a generation (a submit refused before queueing, and so resent, is not
// one: under load a submit may be refused and sent again without any charge).
const sends = (all: StoredRecord[], key: string) =>
  all.filter((r) => (r.t === "submitted" || r.t === "reconciled") && r.key === key).length;
/** Submits a generation began, sent or not. */
const attempts = (all: StoredRecord[], key: string) =>
  all.filter((r) => r.t === "submitting" && r.key === key).length;
async function clipsDecode(report: RunReport, dir: string): Promise<void> {
  for (const i of report.items.filter((i) => i.file))
    expect(await decodeErrors(join(dir, i.file!)), `${i.file} decodes`).toBe("");
}

/**
 * Runs `manifest` into `runDir` in a child process that SIGKILLs itself the moment a scene's
 * upload is journaled (the runner's "uploaded" event), before that scene's submit: what a crash or
 * `kill -9` right there leaves on disk. Uses the built runner (turbo builds before testing).
 */
async function runUntilUploadThenKill(o: {
  manifest: string;
  runDir: string;
  emulatorUrl: string;
  scene: string;
}): Promise<string> {
  const script = `
const [runner, core, manifest] = await Promise.all(
  [${JSON.stringify(fileURLToPath(new URL("../dist/index.js", import.meta.url)))},
   ${JSON.stringify(require.resolve("@hailuo/core"))},
   ${JSON.stringify(require.resolve("@hailuo/manifest"))}].map((p) => import(p)));
await runner.runManifest({
  manifest: await manifest.loadManifest(${JSON.stringify(o.manifest)}),
  runDir: ${JSON.stringify(o.runDir)},
  client: core.createHailuoClient({ emulatorUrl: ${JSON.stringify(o.emulatorUrl)} }),
  onEvent: (e) => {
    if (e.type === "item" && e.sceneId === ${JSON.stringify(o.scene)} && e.detail?.startsWith("uploaded"))
      process.kill(process.pid, "SIGKILL");
  },
});`;
  const error = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script])
    .then(() => undefined)
    .catch((e: { signal?: string; stderr?: string }) => e);
  expect(error?.signal, error?.stderr).toBe("SIGKILL");
  // Its exit was seen, so its run.lock is a dead process's: spared the 3 s it takes to go stale.
  await rm(join(o.runDir, "run.lock"), { recursive: true, force: true });
  return o.runDir;
}

describe("scene images, money-safe", () => {
  const fx = runFixture({ slots: 4, progressLatencyMs: 50 });

  it("a resume after a kill between an upload and its submit uploads nothing again", async () => {
    const dir = join(fx.dir, "in");
    await makeImages(dir);
    const file = join(dir, "chain.yaml");
    await writeFile(
      file,
      `name: chain
scenes:
  - id: dawn
    prompt: Harbour at dawn, killed after the upload
  - id: gull
    prompt: A gull takes off from the same post
    continue_from: dawn
  - id: still
    prompt: A still harbour
    image: images/start.png
`,
    );
    const runDir = join(fx.dir, "run");
    await runUntilUploadThenKill({
      manifest: file,
      runDir,
      emulatorUrl: fx.emu.url,
      scene: "gull",
    });
    const killed = await records(runDir);
    const uploads = killed.filter((r) => r.t === "uploaded");
    // Killed right after gull's first frame was journaled as uploaded: no submit of it exists.
    expect(uploads.map((r) => r.t === "uploaded" && r.scene)).toEqual(["still", "gull"]);
    expect(killed.some((r) => r.t === "submitting" && r.scene === "gull")).toBe(false);
    const uploadsBefore = fx.emu.stats().uploads;
    expect(uploadsBefore.completed).toBe(2);

    // The resume takes the frame again, finds its content uploaded, and submits with that URL.
    const resumed = await runManifest(fx.opts({ runDir }));
    expect(resumed.exitCode).toBe(0);
    expect(fx.emu.stats().uploads).toEqual(uploadsBefore);
    const all = await records(runDir);
    const gull = keyOf(resumed.report, "gull");
    expect(all.filter((r) => r.t === "uploaded")).toHaveLength(2);
    // The money facts first: three requests reached fal, one per scene, billed as reported.
    expect(fx.emu.stats().submits.total).toBe(3);
    for (const scene of ["dawn", "gull", "still"])
      expect(sends(all, keyOf(resumed.report, scene)), `${scene} submits`).toBe(1);
    expect(resumed.report.totals.billedUsd).toBeCloseTo(fx.emu.stats().billed.usd, 6);
    expect(resumed.report.totals.billedUsd).toBeCloseTo(3 * 0.27, 6);
    const clip = (scene: string) =>
      join(runDir, resumed.report.items.find((i) => i.scene === scene)!.file!);
    expect(
      await psnr({ clip: clip("gull"), frame: "first" }, { clip: clip("dawn"), frame: "last" }),
    ).toBeGreaterThanOrEqual(35);
    expect(all.find((r) => r.t === "submitting" && r.key === gull)).toBeDefined();
    await clipsDecode(resumed.report, runDir);
    // A killed process, a resume and PSNRs: heavier than one money test.
  }, 90_000);

  it("an image changed after the manifest was checked: that scene is refused, nothing sent for it", async () => {
    const dir = join(fx.dir, "in");
    await makeImages(dir);
    const file = join(dir, "changed.yaml");
    await writeFile(
      file,
      `name: changed
scenes:
  - id: boat
    prompt: A boat crosses from start to end
    image: images/start.png
    end_image: images/end.png
  - id: quay
    prompt: The quay at noon
`,
    );
    const manifest = await loadManifest(file);
    // Replaced between the check and the run (an export overwrote it, say).
    await copyFile(join(dir, "images", "end.png"), join(dir, "images", "start.png"));
    const result = await runManifest(fx.opts({ manifest }));
    expect(result.exitCode).toBe(1);
    const boat = result.report.items.find((i) => i.scene === "boat")!;
    expect(boat).toMatchObject({ status: "failed", errorCode: "manifest", costUsd: 0 });
    expect(boat.error).toContain(`${join(dir, "images", "start.png")} changed since the manifest`);
    expect(fx.emu.stats().uploads.initiated).toBe(0);
    expect(fx.emu.stats().byEndpoint[I2V_02]).toBeUndefined();
    expect(attempts(await records(fx.dir), boat.key)).toBe(0);
    // The scene beside it went on.
    expect(result.report.items.find((i) => i.scene === "quay")!.status).toBe("done");
    expect(fx.emu.stats().submits.total).toBe(1);
    expect(result.report.totals.billedUsd).toBeCloseTo(fx.emu.stats().billed.usd, 6);
    await clipsDecode(result.report, fx.dir);
  });

  it("a source that ends without a clip fails the scenes continuing it, naming it, with no submit", async () => {
    await fx.restart({ slots: 4, progressLatencyMs: 50, faults: { policyWords: ["forbidden"] } });
    const manifest = await loadManifest(
      await (async () => {
        const file = join(fx.dir, "source.yaml");
        await writeFile(
          file,
          `name: source
scenes:
  - id: raid
    prompt: A forbidden raid on the harbour
  - id: after
    prompt: Smoke over the water
    continue_from: previous
  - id: later
    prompt: Night falls on the smoke
    continue_from: previous
  - id: quay
    prompt: The quay at noon
`,
        );
        return file;
      })(),
    );
    const runDir = join(fx.dir, "run");
    const first = await runManifest(fx.opts({ manifest, runDir }));
    expect(first.exitCode).toBe(1);
    const row = (scene: string) => first.report.items.find((i) => i.scene === scene)!;
    expect(row("raid")).toMatchObject({ status: "failed", errorCode: "content_policy" });
    expect(row("after")).toMatchObject({ status: "failed", errorCode: "preflight", costUsd: 0 });
    expect(row("after").error).toMatch(
      /^continue_from raid: scene raid has no clip to continue from \(it failed: #1 content_policy/,
    );
    expect(row("after").error).toContain("nothing was submitted for after#1");
    // Down the chain: "later" names its own source, which has nothing either.
    expect(row("later")).toMatchObject({ status: "failed", errorCode: "preflight" });
    expect(row("later").error).toContain("continue_from after: scene after has no clip");
    expect(row("quay").status).toBe("done");
    const stats = fx.emu.stats();
    expect(stats.byEndpoint[I2V_02]).toBeUndefined();
    expect(stats.uploads.initiated).toBe(0);
    expect(first.report.totals.billedUsd).toBeCloseTo(stats.billed.usd, 6);
    expect(first.report.totals.billedUsd).toBeCloseTo(0.27, 6);
    // A resume sends nothing more: the source's refusal is final, its dependents still wait on it.
    const again = await runManifest(fx.opts({ runDir }));
    expect(again.report.items.map((i) => i.status)).toEqual([
      "failed",
      "failed",
      "failed",
      "cached",
    ]);
    expect(fx.emu.stats().submits.total).toBe(stats.submits.total);
    await clipsDecode(again.report, runDir);
  });

  it("a budget needs the price of each endpoint it pays: one fal cannot confirm refuses the run before a submit", async () => {
    await fx.restart({ slots: 4, progressLatencyMs: 50, platformApi: "forbidden" });
    const manifest = parseManifest(
      `name: t23\nscenes:\n  - id: night\n    prompt: The harbour at night\n    model: ${T2V_23}\n`,
      { file: "t23.yaml" },
    );
    const warnings: string[] = [];
    const onEvent = (e: RunEvent) => e.type === "warning" && warnings.push(e.message);
    const refused = await runManifest(fx.opts({ manifest, budgetUsd: 5, onEvent })).catch(
      (e: unknown) => e,
    );
    expect(refused).toMatchObject({ code: "price_unknown", retryable: false });
    expect((refused as Error).message).toContain(`needs the account's price for ${T2V_23}`);
    expect((refused as Error).message).toContain("nothing was submitted");
    expect((refused as Error).message).toContain("list price $0.28/video");
    expect(fx.emu.stats().submits.total).toBe(0);
    // No seed scene: the seed's price is nobody's concern; Hailuo 2.3's is warned about.
    expect(warnings).toEqual([
      expect.stringMatching(new RegExp(`^price of ${T2V_23} not verified`)),
    ]);
    const ran = await runManifest(fx.opts({ manifest, budgetUsd: 5, assumeListPrice: true }));
    expect(ran.report.items[0]).toMatchObject({ status: "done", costUsd: 0.28 });
    expect(ran.report.caveats.map((c) => c.kind)).toEqual(["price_unverified"]);
    expect(ran.report.caveats[0]!.message).toContain(`priced ${T2V_23} at its list price ($0.28`);
    expect(ran.report.totals.billedUsd).toBeCloseTo(fx.emu.stats().billed.usd, 6);
    expect(fx.emu.stats().submits.total).toBe(1);
    await clipsDecode(ran.report, fx.dir);
  });
});
