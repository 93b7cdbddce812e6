import { execFile } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import type { Emulator } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import { decodeErrors, makeTempDir, startTestEmulator } from "@hailuo/test-utils";
import { readRunReport, runManifest, writePick } from "@hailuo/runner";
import { assembleFilm, createFilmBuilder, runMediaStage } from "./index.js";

// A real run against the emulator whose clips land one by one; the builder makes the film's
// pieces as they land (real ffmpeg), and the film it finishes is the film a full assemble makes.
const run = promisify(execFile);
const manifest = parseManifest(
  `name: builder
scenes:
  - id: a
    prompt: builder scene a
  - id: b
    prompt: builder scene b
    takes: 2
  - id: c
    prompt: builder scene c
assemble:
  transition: fade:0.5
  title: { text: "Builder", duration: 1 }
thumbnails: { preview: none, sheet_columns: 0 }
`,
  { file: "builder.yaml" },
);

/** Every frame of a video, 16×9 RGB. */
async function frames(file: string): Promise<Buffer[]> {
  const { stdout } = await run(
    "ffmpeg",
    ["-v", "error", "-i", file, "-vf", "scale=16:9,format=rgb24", "-f", "rawvideo", "-"],
    { encoding: "buffer", maxBuffer: 1 << 26 },
  );
  return Array.from({ length: stdout.length / 432 }, (_, k) =>
    stdout.subarray(k * 432, (k + 1) * 432),
  );
}
const diff = (a: Buffer, b: Buffer) => a.reduce((s, x, i) => s + Math.abs(x - b[i]!), 0) / a.length;
const pieces = async (dir: string) =>
  (await readdir(join(dir, "segments"))).filter((n) => /^[0-9a-f]{32}\.mp4$/.test(n)).sort();

describe("createFilmBuilder", () => {
  let emu: Emulator;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  beforeAll(async () => {
    emu = await startTestEmulator({ slots: 1, progressLatencyMs: 100 });
    tmp = await makeTempDir();
  });
  afterAll(async () => {
    await emu?.close();
    await tmp?.cleanup();
  });

  it("makes the pieces as clips land; finish only joins, and the film is a full assemble's", async () => {
    const made: [number, number][] = [];
    const told: [string, number][] = [];
    const builder = createFilmBuilder({
      runDir: tmp.dir,
      manifest,
      preset: "ultrafast",
      // What is made and when, not how politely: a niced ffmpeg crawls on a busy CI host.
      niceness: 0,
      onPieces: (n, of) => made.push([n, of]),
      onProgress: (step, p) => told.push([step, p]),
    });
    const landed: string[] = [];
    const ready: Promise<void>[] = [];
    const ran = await runManifest({
      manifest,
      runDir: tmp.dir,
      client: createHailuoClient({ emulatorUrl: emu.url }),
      concurrency: 1,
      onEvent: (e) => {
        if (e.type === "item" && e.phase === "done") {
          landed.push(e.sceneId);
          ready.push(builder.clipReady(e.sceneId));
        }
      },
    });
    expect(ran.exitCode).toBe(0);
    expect(landed).toHaveLength(4);
    // Each clipReady resolves when the pieces it could make are made.
    await Promise.all(ready);
    const result = await builder.finish();
    // title | title→a | a | a→b | b | b→c | c: every piece made while the clips landed.
    expect(made.at(-1)).toEqual([7, 7]);
    expect(made.length).toBeGreaterThan(1);
    expect(result.film?.reason).toMatch(/0 of 7 pieces encoded, 7 kept/);
    expect(told.filter(([s]) => s === "film").map(([, p]) => p)).toEqual(
      expect.arrayContaining([0, 100]),
    );
    expect(told.find(([s]) => s === "film")).toEqual(["film", 0]);
    // A full assemble of the same clips in one go: the same length and frames.
    const report = await readRunReport(tmp.dir, manifest);
    const full = await assembleFilm(tmp.dir, manifest, report, {
      segments: false,
      preset: "ultrafast",
      filmOut: "full.mp4",
    });
    const [a, b] = await Promise.all([
      frames(join(tmp.dir, "film.mp4")),
      frames(join(tmp.dir, full.film.file)),
    ]);
    // 1 + 3 × 6 − 3 × 0.5 = 17.5 s
    expect([a.length, b.length]).toEqual([420, 420]);
    expect(Math.max(...a.map((f, k) => diff(f, b[k]!)))).toBeLessThan(3);
    expect(await decodeErrors(join(tmp.dir, "film.mp4"))).toBe("");
  }, 150_000);

  it("after a pick of the other take, assemble encodes that scene's three pieces and drops the old", async () => {
    const before = await pieces(tmp.dir);
    const filmBefore = await frames(join(tmp.dir, "film.mp4"));
    await writePick(tmp.dir, "b", 2);
    const r = await runMediaStage(tmp.dir, manifest, { preset: "ultrafast" });
    expect(r.film?.reason).toMatch(/3 of 7 pieces encoded, 4 kept/);
    const after = await pieces(tmp.dir);
    expect(after).toHaveLength(7);
    expect(after.filter((k) => before.includes(k))).toHaveLength(4);
    const film = await frames(join(tmp.dir, "film.mp4"));
    expect(film).toHaveLength(420);
    // The picked take in its slot: b starts at 1 − 0.5 + 6 − 0.5 = 6 s; mid-body is 9 s in.
    const take2 = (await readRunReport(tmp.dir, manifest)).items.find(
      (i) => i.scene === "b" && i.take === 2,
    )!;
    const own = await frames(join(tmp.dir, take2.file!));
    expect(diff(film[9 * 24]!, own[3 * 24]!)).toBeLessThan(3);
    expect(diff(film[9 * 24]!, filmBefore[9 * 24]!)).toBeGreaterThan(3);
    // Scenes a and c as they were.
    for (const s of [3, 15]) expect(diff(film[s * 24]!, filmBefore[s * 24]!)).toBeLessThan(1);
  }, 150_000);
});
