import { execFile } from "node:child_process";
import { readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeErrors, makeTempDir } from "@hailuo/test-utils";
import { concatClips, probe, type ConcatOptions } from "./index.js";

// Real ffmpeg on small real clips: a film made of cached pieces against the film made in one go.
const run = promisify(execFile);
let tmp: Awaited<ReturnType<typeof makeTempDir>>;
const W = 96;
const H = 54;

/** A 2 s test pattern of its own hue (small, so each film takes a second or two). */
async function pattern(name: string, hue: number, seconds = 2): Promise<string> {
  const file = join(tmp.dir, name);
  await run("ffmpeg", [
    "-v",
    "error",
    "-y",
    "-f",
    "lavfi",
    "-i",
    `testsrc2=s=${W}x${H}:r=24:d=${seconds},hue=h=${hue}`,
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-pix_fmt",
    "yuv420p",
    file,
  ]);
  return file;
}

/** Every frame of a video, 16×9 RGB (the clips differ in hue, not in brightness). */
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

let clips: string[];
let other: string;
beforeAll(async () => {
  tmp = await makeTempDir();
  clips = await Promise.all([0, 60, 120, 180].map((h, i) => pattern(`c${i}.mp4`, h)));
  other = await pattern("other.mp4", 270);
});
afterAll(() => tmp.cleanup());

describe("a film made of cached pieces", () => {
  const options = (): ConcatOptions => ({
    transitions: [
      { type: "fade", durationS: 0.5 },
      { type: "wipeleft", durationS: 0.25 },
      { type: "fade", durationS: 0.5 },
    ],
    title: { text: "Title", durationS: 1 },
    preset: "ultrafast",
  });

  it("has the one-go film's length and frames; a new clip in one slot re-encodes its three pieces only", async () => {
    const segments = { dir: join(tmp.dir, "segments") };
    const whole = await concatClips(clips, join(tmp.dir, "whole.mp4"), options());
    const cached = await concatClips(clips, join(tmp.dir, "cached.mp4"), {
      ...options(),
      segments,
    });
    // title 1 + 4 × 2 − (0.5 into the first clip, 0.5 + 0.25 + 0.5) = 7.25 s = 174 frames
    expect(cached.pieces).toEqual({ made: 9, reused: 0, removed: 0 });
    expect(cached.mode).toBe("reencode");
    const [a, b] = await Promise.all([frames(whole.file), frames(cached.file)]);
    expect([a.length, b.length]).toEqual([174, 174]);
    expect(Math.abs(cached.info.durationS - 7.25)).toBeLessThanOrEqual(1 / 24 + 1e-6);
    // The same frames, give or take the encoder: another session for each piece, same settings.
    expect(Math.max(...a.map((f, k) => diff(f, b[k]!)))).toBeLessThan(3);
    expect(cached.partStartsS).toEqual(whole.partStartsS.map((s) => expect.closeTo(s, 6)));
    expect(await decodeErrors(cached.file)).toBe("");

    // Nothing changed: nothing is encoded, the film is a join.
    const again = await concatClips(clips, join(tmp.dir, "again.mp4"), { ...options(), segments });
    expect(again.pieces).toEqual({ made: 0, reused: 9, removed: 0 });
    expect(again.reason).toMatch(/0 of 9 pieces encoded, 9 kept/);

    // A new pick in slot 2 (of 4): the windows into and out of it and its body; the three
    // pieces it replaced are removed once the film is joined.
    const picked = [clips[0]!, other, clips[2]!, clips[3]!];
    const re = await concatClips(picked, join(tmp.dir, "picked.mp4"), { ...options(), segments });
    expect(re.pieces).toEqual({ made: 3, reused: 6, removed: 3 });
    expect((await readdir(segments.dir)).filter((n) => n.endsWith(".mp4"))).toHaveLength(9);
    const p = await frames(re.file);
    expect(p).toHaveLength(174);
    // The picked take in its slot (mid-body), its neighbours as they were.
    const own = await frames(other);
    const mid = (slot: number) => Math.round(re.partStartsS[slot]! * 24) + 24;
    expect(diff(p[mid(1)]!, own[24]!)).toBeLessThan(3);
    expect(diff(p[mid(1)]!, b[mid(1)]!)).toBeGreaterThan(10);
    for (const slot of [0, 2, 3]) expect(diff(p[mid(slot)]!, b[mid(slot)]!)).toBeLessThan(1);
    // Every frame outside the slot and its two windows is the film's before the pick, exactly:
    // the same pieces, joined without a decode.
    const [from, to] = [mid(1) - 24, mid(2) - 24 + 6];
    const outside = p.flatMap((f, k) => (k < from || k >= to ? [diff(f, b[k]!)] : []));
    expect(outside.length).toBe(174 - (to - from));
    expect(Math.max(...outside)).toBe(0);
  }, 30_000);

  it("lays the audio bed under the join, and makes again a kept piece that is not what its key says", async () => {
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
    const segments = { dir: join(tmp.dir, "segments-audio") };
    const first = await concatClips(clips.slice(0, 2), join(tmp.dir, "a1.mp4"), {
      transitions: { type: "fade", durationS: 0.5 },
      audio: { file: music, fadeInS: 0.5, fadeOutS: 1 },
      preset: "ultrafast",
      segments,
    });
    expect(first.info).toMatchObject({ hasAudio: true, audioCodec: "aac", width: W, height: H });
    expect(Math.abs(first.info.durationS - 3.5)).toBeLessThanOrEqual(2 / 24 + 0.05);
    // A kept piece swapped for another (a body of the wrong length): the join's frame count
    // gives it away and every piece is made again.
    const names = (await readdir(segments.dir)).filter((n) => n.endsWith(".mp4"));
    const sizes = await Promise.all(
      names.map(async (n) => (await stat(join(segments.dir, n))).size),
    );
    const small = names[sizes.indexOf(Math.min(...sizes))]!;
    const big = names[sizes.indexOf(Math.max(...sizes))]!;
    await writeFile(
      join(segments.dir, small),
      await import("node:fs/promises").then((f) => f.readFile(join(segments.dir, big))),
    );
    const second = await concatClips(clips.slice(0, 2), join(tmp.dir, "a2.mp4"), {
      transitions: { type: "fade", durationS: 0.5 },
      audio: { file: music, fadeInS: 0.5, fadeOutS: 1 },
      preset: "ultrafast",
      segments,
    });
    expect(second.pieces?.made).toBe(3);
    expect((await frames(second.file)).length).toBe(84);
    expect((await probe(second.file)).hasAudio).toBe(true);
    expect(await decodeErrors(second.file)).toBe("");
  }, 30_000);
});
