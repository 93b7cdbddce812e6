import { execFile } from "node:child_process";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AnimaticRenderer } from "@hailuo/emulator";
import { decodeErrors, makeTempDir, TEST_CACHE_DIR } from "@hailuo/test-utils";
import {
  animatedPreview,
  concatClips,
  contactSheet,
  poster,
  probe,
  sheetSize,
  xfadeOffsets,
} from "./index.js";
import { runStarts } from "./segments.js";

// Real ffmpeg on real clips: the emulator's animatic renderer makes Hailuo-shaped MP4s.
const run = promisify(execFile);
let tmp: Awaited<ReturnType<typeof makeTempDir>>;
let clips: string[];
const FRAME = 1 / 24;
// A full-size encode beside the other test streams on a busy 2-core host takes several times what
// it takes alone (22 s seen against 3.5 s): the time limit of the renders and the tests that
// encode, which a slow machine must not turn into a failure.
const HEAVY_MS = 90_000;

beforeAll(async () => {
  tmp = await makeTempDir();
  const r = new AnimaticRenderer(TEST_CACHE_DIR);
  clips = await Promise.all([
    r.render({ prompt: "media test one", durationS: 6 }),
    r.render({ prompt: "media test two", durationS: 10 }),
    r.render({ prompt: "media test three", durationS: 6 }),
  ]);
}, HEAVY_MS);
afterAll(() => tmp.cleanup());

describe("probe", () => {
  it("measures a clip and refuses a file that is not video", async () => {
    const info = await probe(clips[1]!);
    expect(info).toMatchObject({
      width: 1366,
      height: 768,
      fps: 24,
      codec: "h264",
      pixFmt: "yuv420p",
      hasAudio: false,
    });
    expect(info.durationS).toBeCloseTo(10, 2);
    const junk = join(tmp.dir, "junk.mp4");
    await writeFile(junk, "not a video at all");
    await expect(probe(junk)).rejects.toMatchObject({ code: "not_video" });
  });
});

describe("runStarts", () => {
  it("cuts parts into the fewest runs of at most 8, an even count of near-equal size for two encoders", () => {
    expect(runStarts(5, 8, 2)).toEqual([0]);
    expect(runStarts(9, 8, 2)).toEqual([0, 5]);
    // 50 parts would be 7 runs (the last of 2 encoded alone): 8 runs of 6–7 instead.
    const starts = runStarts(50, 8, 2);
    const sizes = starts.map((a, r) => (starts[r + 1] ?? 50) - a);
    expect(sizes).toHaveLength(8);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expect(sizes.reduce((x, y) => x + y, 0)).toBe(50);
    expect(runStarts(3, 1, 2)).toEqual([0, 1, 2]);
  });
});

describe("concatClips", { timeout: HEAVY_MS }, () => {
  it("stream-copies identical clips: summed duration, same codec parameters, no re-encode", async () => {
    const out = join(tmp.dir, "copy.mp4");
    const progress: number[] = [];
    const r = await concatClips(clips, out, { onProgress: (p) => progress.push(p) });
    expect(r.mode).toBe("copy");
    expect(r.info.durationS).toBeCloseTo(22, 1);
    expect(r.partStartsS.map((x) => Number(x.toFixed(1)))).toEqual([0, 6, 16]);
    expect(Math.abs(r.info.durationS - 22)).toBeLessThanOrEqual(FRAME);
    // What the film says it is (ffmpeg's count of frames written) is what a probe of the film finds.
    const src = await probe(clips[0]!);
    const film = await probe(out);
    expect(Math.abs(film.durationS - r.info.durationS)).toBeLessThanOrEqual(FRAME);
    expect([
      film.codec,
      film.profile,
      film.width,
      film.height,
      film.pixFmt,
      film.fpsRational,
    ]).toEqual([src.codec, src.profile, src.width, src.height, src.pixFmt, src.fpsRational]);
    // A copy carries the same compressed frames: its size is the inputs' sum, give or take the headers.
    const inputs = (await Promise.all(clips.map((c) => stat(c)))).reduce((s, x) => s + x.size, 0);
    expect(Math.abs((await stat(out)).size - inputs) / inputs).toBeLessThan(0.02);
    // Progress only moves forward and stays within 0–100 (the final 100 is the runner's own call).
    expect(progress.every((p, i) => p >= 0 && p <= 100 && (i === 0 || p >= progress[i - 1]!))).toBe(
      true,
    );
    // +faststart: the moov atom comes before mdat, so players start before the whole file arrives.
    const bytes = await readFile(out);
    expect(bytes.indexOf("moov")).toBeLessThan(bytes.indexOf("mdat"));
  });

  it("crossfades with offsets from probed durations: sum minus overlaps within one frame", async () => {
    expect(xfadeOffsets([6, 10, 6], [0.5, 1])).toEqual([5.5, 14.5]);
    const out = join(tmp.dir, "xfade.mp4");
    const r = await concatClips(clips, out, {
      transitions: [
        { type: "fade", durationS: 0.5 },
        { type: "dissolve", durationS: 1 },
      ],
      preset: "ultrafast",
    });
    expect(r.mode).toBe("reencode");
    expect(Math.abs(r.info.durationS - 20.5)).toBeLessThanOrEqual(FRAME + 1e-6);
    // Each scene starts where the transition into it starts: the film's chapter marks.
    expect(r.partStartsS.map((x) => Number(x.toFixed(1)))).toEqual([0, 5.5, 14.5]);
    expect(r.info).toMatchObject({ codec: "h264", pixFmt: "yuv420p", width: 1366, height: 768 });
  });

  it("crossfades 60 clips piece by piece (memory bounded): the film lasts the sum minus the overlaps, within a frame", async () => {
    const small = [join(tmp.dir, "small-a.mp4"), join(tmp.dir, "small-b.mp4")];
    for (const [i, f] of small.entries())
      await run("ffmpeg", [
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        `testsrc2=s=192x108:r=24:d=1.5,hue=h=${i * 90}`,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        f,
      ]);
    const sixty = Array.from({ length: 60 }, (_, i) => small[i % 2]!);
    const r = await concatClips(sixty, join(tmp.dir, "sixty.mp4"), {
      transitions: { type: "fade", durationS: 0.25 },
      preset: "ultrafast",
    });
    expect(r.mode).toBe("reencode");
    expect(Math.abs(r.info.durationS - (60 * 1.5 - 59 * 0.25))).toBeLessThanOrEqual(1 / 24 + 1e-6);
    expect(r.partStartsS[59]).toBeCloseTo(59 * 1.25, 6);
    expect(await decodeErrors(join(tmp.dir, "sixty.mp4"))).toBe("");
    // Either side of the joins between ffmpeg runs (8 runs of 7–8 parts), mid-body frames are their own clip's.
    const frameAt = async (file: string, t: number) =>
      (
        await run(
          "ffmpeg",
          [
            "-v",
            "error",
            "-ss",
            t.toFixed(4),
            "-i",
            file,
            "-frames:v",
            "1",
            "-vf",
            "scale=32:18,format=rgb24",
            "-f",
            "rawvideo",
            "-",
          ],
          { encoding: "buffer" },
        )
      ).stdout;
    const diff = (a: Buffer, b: Buffer) =>
      a.reduce((s, x, i) => s + Math.abs(x - b[i]!), 0) / a.length;
    const own = await Promise.all(small.map((f) => frameAt(f, 0.75)));
    for (const k of [7, 8, 14, 15, 52, 53]) {
      const got = await frameAt(join(tmp.dir, "sixty.mp4"), r.partStartsS[k]! + 0.75);
      expect(diff(got, own[k % 2]!)).toBeLessThan(diff(got, own[(k + 1) % 2]!) / 4);
    }
    // The fades into the first part of a run are made by the run before it: halfway, both clips show.
    for (const k of [8, 15, 53]) {
      const got = await frameAt(join(tmp.dir, "sixty.mp4"), r.partStartsS[k]! + 0.125);
      const [a, b] = [
        diff(got, await frameAt(small[(k + 1) % 2]!, 1.375)),
        diff(got, await frameAt(small[k % 2]!, 0.125)),
      ];
      expect(Math.min(a, b)).toBeGreaterThan(Math.max(a, b) / 3);
    }
  }, 60_000);

  it("a fade blends with xfade's weights: frame n of the window is n/frames of the incoming clip", async () => {
    // Black into white over 0.5 s at 24 fps: 12 blended frames whose brightness climbs in equal steps.
    const solid = async (name: string, color: string) => {
      const f = join(tmp.dir, name);
      await run("ffmpeg", [
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        `color=c=${color}:s=64x36:r=24:d=2`,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        f,
      ]);
      return f;
    };
    const film = join(tmp.dir, "black-white.mp4");
    const r = await concatClips(
      [await solid("black.mp4", "black"), await solid("white.mp4", "white")],
      film,
      { transitions: { type: "fade", durationS: 0.5 }, preset: "ultrafast" },
    );
    const { stdout } = await run(
      "ffmpeg",
      ["-v", "error", "-i", film, "-vf", "format=gray", "-f", "rawvideo", "-"],
      { encoding: "buffer", maxBuffer: 1 << 24 },
    );
    const luma = Array.from(
      { length: stdout.length / (64 * 36) },
      (_, k) =>
        stdout.subarray(k * 64 * 36, (k + 1) * 64 * 36).reduce((a, b) => a + b, 0) / (64 * 36),
    );
    expect(luma).toHaveLength(Math.round(r.info.durationS * 24));
    const start = 36; // 2 s − 0.5 s at 24 fps
    const [black, white] = [luma[start - 1]!, luma[start + 12]!];
    expect(white - black).toBeGreaterThan(200);
    const steps = luma
      .slice(start, start + 12)
      .map((y) => Math.round(((y - black) / (white - black)) * 12 * 10) / 10);
    expect(steps).toEqual(steps.map((_, n) => expect.closeTo(n, 0)));
  });

  it("assembles mixed inputs (other size and rate, one with audio) with cards and an audio bed", async () => {
    const odd = join(tmp.dir, "odd.mp4");
    await run("ffmpeg", [
      "-v",
      "error",
      "-y",
      "-f",
      "lavfi",
      "-i",
      "testsrc2=s=640x360:r=25:d=4",
      "-f",
      "lavfi",
      "-i",
      "sine=f=440:d=4",
      "-c:v",
      "libx264",
      "-preset",
      "ultrafast",
      "-pix_fmt",
      "yuv420p",
      "-c:a",
      "aac",
      "-shortest",
      odd,
    ]);
    const music = join(tmp.dir, "music.m4a");
    await run("ffmpeg", [
      "-v",
      "error",
      "-y",
      "-f",
      "lavfi",
      "-i",
      "sine=f=220:d=3",
      "-c:a",
      "aac",
      music,
    ]);
    const out = join(tmp.dir, "mixed.mp4");
    const r = await concatClips([clips[0]!, odd], out, {
      transitions: { type: "wipeleft", durationS: 0.5 },
      title: { text: "Title card", durationS: 2 },
      end: { text: "The end", durationS: 1.5, color: "navy" },
      audio: { file: music, fadeInS: 0.5, fadeOutS: 1 },
      preset: "ultrafast",
    });
    // title 2 + 6 + 4 + end 1.5 − three 0.5 s transitions = 12 s
    expect(Math.abs(r.info.durationS - 12)).toBeLessThanOrEqual(2 * FRAME + 0.05);
    expect(r.info).toMatchObject({
      width: 1366,
      height: 768,
      fps: 24,
      hasAudio: true,
      audioCodec: "aac",
    });
  });

  it("refuses stream copy of clips that differ, and a transition longer than a clip", async () => {
    const odd = join(tmp.dir, "odd2.mp4");
    await run("ffmpeg", [
      "-v",
      "error",
      "-y",
      "-f",
      "lavfi",
      "-i",
      "testsrc2=s=320x240:r=30:d=2",
      "-c:v",
      "libx264",
      "-preset",
      "ultrafast",
      "-pix_fmt",
      "yuv420p",
      odd,
    ]);
    await expect(
      concatClips([clips[0]!, odd], join(tmp.dir, "bad.mp4"), { mode: "copy" }),
    ).rejects.toMatchObject({ code: "assemble_failed" });
    await expect(
      concatClips([clips[0]!, odd], join(tmp.dir, "bad.mp4"), {
        transitions: { type: "fade", durationS: 3 },
      }),
    ).rejects.toThrow(/longer than a part/);
    // 1.2 s in and 1.2 s out of a 2 s clip: each shorter than it, together longer.
    await expect(
      concatClips([clips[0]!, odd, clips[2]!], join(tmp.dir, "bad.mp4"), {
        transitions: { type: "fade", durationS: 1.2 },
      }),
    ).rejects.toThrow(/part 2 overlap/);
    await expect(stat(join(tmp.dir, "bad.mp4"))).rejects.toThrow();
  });
});

describe("thumbnails", { timeout: HEAVY_MS }, () => {
  it("makes posters, a labelled contact sheet and a GIF of the expected sizes", async () => {
    const p1 = join(tmp.dir, "p1.jpg");
    await poster(clips[0]!, p1);
    expect((await imageSize(p1)).width).toBe(640);
    const p2 = join(tmp.dir, "p2.jpg");
    await poster(clips[1]!, p2, { atS: 2.5, width: 320 });
    expect((await imageSize(p2)).width).toBe(320);

    const sheet = join(tmp.dir, "sheet.jpg");
    const items = [
      { file: clips[0]!, label: "one · 6 s" },
      { file: clips[1]!, label: "two · 10 s" },
      { file: p1, label: "three · 6 s" },
      { file: clips[2]!, label: 'it\'s "quoted": 50% done' },
      { file: clips[2]!, label: "five" },
    ];
    const size = await contactSheet(items, sheet, { columns: 3, tileWidth: 240 });
    const expected = sheetSize(5, { columns: 3, tileWidth: 240 });
    expect(size).toEqual({ width: expected.width, height: expected.height, pages: [sheet] });
    expect(await imageSize(sheet)).toEqual({ width: size.width, height: size.height });
    expect(size.width).toBe(3 * 240 + 4 * 8);

    // A thousand tiles: one ffmpeg run over a concat script (no argument grows), ten pages of 4×25.
    const many = Array.from({ length: 1000 }, (_, i) => ({ file: p1, label: `scene ${i} · 6 s` }));
    const big = await contactSheet(many, join(tmp.dir, "big.jpg"));
    expect(big.pages).toEqual([
      join(tmp.dir, "big.jpg"),
      ...Array.from({ length: 9 }, (_, p) => join(tmp.dir, `big-${p + 2}.jpg`)),
    ]);
    const page = sheetSize(100);
    for (const f of [big.pages[0]!, big.pages[9]!])
      expect(await imageSize(f)).toEqual({ width: page.width, height: page.height });

    const gif = join(tmp.dir, "preview.gif");
    await animatedPreview(clips[0]!, gif, { width: 320 });
    const g = await imageSize(gif);
    expect(g.width).toBe(320);
    expect(g.height).toBe(180);
  });
});

async function imageSize(file: string): Promise<{ width: number; height: number }> {
  const { stdout } = await run("ffprobe", [
    "-v",
    "error",
    "-select_streams",
    "v:0",
    "-show_entries",
    "stream=width,height",
    "-of",
    "csv=p=0",
    file,
  ]);
  const [width, height] = stdout.trim().split(",").map(Number);
  return { width: width!, height: height! };
}
