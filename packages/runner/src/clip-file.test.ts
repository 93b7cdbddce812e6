import { execFileSync } from "node:child_process";
import { copyFile, open, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import { inputHash, type Emulator, type FaultConfig } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import { decodeErrors, makeTempDir, startTestEmulator } from "@hailuo/test-utils";
import { checkClips, downloadIdleTimeoutMs, recordChangedClips } from "./clip-file.js";
import { planRun, readJournal, runManifest, type RunOptions, type RunReport } from "./index.js";

// A clip is verified, not trusted (issue 21): a torn or stalled download is downloaded again,
// never kept and never paid for twice; a clip changed on disk is found and fetched again.

const board = (name: string, n: number) =>
  parseManifest(
    `name: ${name}\nscenes:\n${Array.from({ length: n }, (_, i) => `  - id: s${i}\n    prompt: ${name} scene ${i}\n    duration: 6\n`).join("")}`,
    { file: `${name}.yaml` },
  );

/** The three money facts: submits per scene-take, the emulator's bill equal to the report, every clip decoding completely. */
async function expectMoneyFacts(
  emu: Emulator,
  report: RunReport,
  runDir: string,
  submitsPerTake: number[],
): Promise<void> {
  const manifest = board(report.name, submitsPerTake.length);
  expect(
    planRun(manifest).map((p) => emu.stats().submits.byInput[inputHash(p.input)] ?? 0),
  ).toEqual(submitsPerTake);
  expect(emu.stats().billed.usd).toBeCloseTo(report.totals.billedUsd, 6);
  const clips = await readdir(join(runDir, "clips"));
  expect(clips.length).toBe(submitsPerTake.length);
  for (const f of clips)
    expect({ f, errors: await decodeErrors(join(runDir, "clips", f)) }).toEqual({ f, errors: "" });
}

describe("clips are verified, not trusted", () => {
  let emu: Emulator;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  // "shared" serves one clip to every scene (no render cost); "animatic" a clip of its own to each.
  const start = async (faults: FaultConfig = {}, render: "shared" | "animatic" = "shared") =>
    (emu = await startTestEmulator({ render, slots: 4, faults }));
  beforeEach(async () => {
    tmp = await makeTempDir();
  });
  afterEach(async () => {
    delete process.env.HAILUO_DOWNLOAD_IDLE_S;
    await emu?.close();
    await tmp.cleanup();
  });
  const opts = (name: string, n: number): RunOptions => ({
    manifest: board(name, n),
    runDir: tmp.dir,
    client: createHailuoClient({ emulatorUrl: emu.url, submitRetryBaseDelayMs: 10 }),
    retryBaseDelayMs: 10,
    concurrency: 2,
  });

  it("a download with no file_size whose body ends cleanly but short is torn: downloaded again, never kept, never resubmitted", async () => {
    await start({ omitFileSize: true, files: [{ kind: "short", count: 1, bytes: 30_000 }] });
    const r = await runManifest(opts("torn", 2));
    expect(r.report.items.map((i) => i.status)).toEqual(["done", "done"]);
    const { records } = await readJournal(join(tmp.dir, "journal.jsonl"));
    const retry = records.find((x) => x.t === "retry");
    expect(retry).toMatchObject({
      code: "verify",
      stage: "save",
      message: expect.stringContaining("cut short"),
    });
    // Two clips, three downloads: the torn one came again from its paid URL.
    expect(emu.stats().downloads).toBe(3);
    expect(emu.stats().faultsInjected["file:short"]).toBe(1);
    await expectMoneyFacts(emu, r.report, tmp.dir, [1, 1]);
  });

  it("a stalled download times out after HAILUO_DOWNLOAD_IDLE_S and is downloaded again, never resubmitted", async () => {
    await start({ files: [{ kind: "stall", count: 1, bytes: 20_000 }] });
    process.env.HAILUO_DOWNLOAD_IDLE_S = "0.3";
    const r = await runManifest(opts("stall", 2));
    expect(r.report.items.map((i) => i.status)).toEqual(["done", "done"]);
    const { records } = await readJournal(join(tmp.dir, "journal.jsonl"));
    expect(records.filter((x) => x.t === "retry")).toEqual([
      expect.objectContaining({ code: "download_stalled", stage: "save" }),
    ]);
    expect(emu.stats().downloads).toBe(3);
    await expectMoneyFacts(emu, r.report, tmp.dir, [1, 1]);
  });

  it("the idle timeout is 60 s unless HAILUO_DOWNLOAD_IDLE_S says otherwise", () => {
    expect(downloadIdleTimeoutMs({})).toBe(60_000);
    expect(downloadIdleTimeoutMs({ HAILUO_DOWNLOAD_IDLE_S: "120" })).toBe(120_000);
    expect(downloadIdleTimeoutMs({ HAILUO_DOWNLOAD_IDLE_S: "soon" })).toBe(60_000);
    expect(downloadIdleTimeoutMs({ HAILUO_DOWNLOAD_IDLE_S: "0" })).toBe(60_000);
  });

  it("a clip replaced by another scene's clip is found by its size or hash; resume downloads it again, no new submit", async () => {
    await start({}, "animatic");
    const first = await runManifest(opts("swap", 2));
    const [a, b] = first.report.items.map((i) => join(tmp.dir, i.file!));
    await copyFile(b!, a!);
    const checks = await checkClips(tmp.dir);
    // Two scenes' clips may happen to be the same size: then only the hash tells them apart.
    const expected =
      (await stat(a!)).size === first.report.items[0]!.video?.bytes ? "mismatch" : "resized";
    expect(checks.map((c) => [c.file, c.standing])).toEqual([
      [first.report.items[0]!.file, expected],
      [first.report.items[1]!.file, "intact"],
    ]);
    expect(
      await recordChangedClips(
        tmp.dir,
        checks.filter((c) => c.standing !== "intact"),
      ),
    ).toBe(true);
    const resumed = await runManifest(opts("swap", 2));
    expect(resumed.report.items.map((i) => i.status)).toEqual(["done", "cached"]);
    expect((await checkClips(tmp.dir, { hash: "all" })).map((c) => c.standing)).toEqual([
      "intact",
      "intact",
    ]);
    expect(emu.stats().downloads).toBe(3);
    await expectMoneyFacts(emu, resumed.report, tmp.dir, [1, 1]);
  });

  it("bit rot that keeps size and time is invisible to a stat, found by hashing every clip, and fetched again by resume", async () => {
    await start();
    const first = await runManifest(opts("rot", 2));
    const file = join(tmp.dir, first.report.items[1]!.file!);
    const stamp = execFileSync("stat", ["-c", "%y", file], { encoding: "utf8" }).trim();
    const before = await stat(file);
    const h = await open(file, "r+");
    const byte = Buffer.alloc(1);
    await h.read(byte, 0, 1, before.size - 100);
    await h.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, before.size - 100);
    await h.close();
    execFileSync("touch", ["-m", "-d", stamp, file]);
    expect((await stat(file)).mtimeMs).toBe(before.mtimeMs);
    expect((await checkClips(tmp.dir)).map((c) => c.standing)).toEqual(["intact", "intact"]);
    // Hashed this session at download, and unchanged by size and time: the film would trust it; a new process would not.
    expect((await checkClips(tmp.dir, { hash: "unverified" })).map((c) => c.standing)).toEqual([
      "intact",
      "intact",
    ]);
    const all = await checkClips(tmp.dir, { hash: "all" });
    expect(all.map((c) => [c.standing, c.hashed])).toEqual([
      ["intact", true],
      ["mismatch", true],
    ]);
    await recordChangedClips(
      tmp.dir,
      all.filter((c) => c.standing !== "intact"),
    );
    const { records } = await readJournal(join(tmp.dir, "journal.jsonl"));
    expect(records.at(-1)).toMatchObject({
      t: "save_failed",
      code: "clip_changed",
      key: first.report.items[1]!.key,
      requestId: first.report.items[1]!.requestId,
    });
    const resumed = await runManifest(opts("rot", 2));
    expect(resumed.report.items.map((i) => i.status)).toEqual(["cached", "done"]);
    expect((await checkClips(tmp.dir, { hash: "all" })).map((c) => c.standing)).toEqual([
      "intact",
      "intact",
    ]);
    await expectMoneyFacts(emu, resumed.report, tmp.dir, [1, 1]);
  });
});
