import { execFile } from "node:child_process";
import { stat, writeFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTempDir } from "@hailuo/test-utils";
import { mp4Facts, readMp4 } from "./mp4-facts.js";
import { ffprobeFacts, probe } from "./probe.js";

const run = promisify(execFile);

// Clips of every kind a user or fal may hand us, made by ffmpeg. Those read in-process must give
// exactly what ffprobe gives (the film's stream-copy decision compares these facts); the rest must
// be declined, so ffprobe reads them.
const src = (size: string, rate: string) => [
  "-f",
  "lavfi",
  "-i",
  `testsrc2=s=${size}:r=${rate}:d=1`,
];
const x264 = ["-c:v", "libx264", "-preset", "ultrafast"];
const READ: Record<string, string[]> = {
  "high-1366x768-24.mp4": [...src("1366x768", "24"), ...x264],
  "main-ntsc.mp4": [...src("1280x720", "30000/1001"), ...x264, "-profile:v", "main"],
  "constrained-baseline.mp4": [...src("640x360", "30"), ...x264, "-profile:v", "baseline"],
  "full-range-yuvj.mp4": [...src("854x480", "25"), ...x264, "-pix_fmt", "yuvj420p"],
  "full-range-flag.mp4": [
    ...src("640x360", "24"),
    ...x264,
    "-color_range",
    "pc",
    "-x264-params",
    "fullrange=on",
  ],
  "interlaced.mp4": [
    ...src("720x576", "25"),
    ...x264,
    "-flags",
    "+ildct+ilme",
    "-x264opts",
    "interlaced=1",
  ],
  "faststart-bframes.mp4": [
    ...src("1366x768", "24"),
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-movflags",
    "+faststart",
  ],
  "timescale-90k.mp4": [...src("640x360", "24"), ...x264, "-video_track_timescale", "90000"],
  "aspect-4-3.mp4": [...src("1920x1080", "60"), ...x264, "-x264-params", "sar=4/3"],
  "quicktime.mov": [...src("640x360", "24"), ...x264],
};
const DECLINED: Record<string, string[]> = {
  "with-audio.mp4": [
    ...src("640x360", "24"),
    "-f",
    "lavfi",
    "-i",
    "sine=d=1",
    ...x264,
    "-c:a",
    "aac",
    "-shortest",
  ],
  "ten-bit.mp4": [...src("640x360", "24"), ...x264, "-pix_fmt", "yuv420p10le"],
  "chroma-444.mp4": [...src("640x360", "24"), ...x264, "-pix_fmt", "yuv444p"],
  "variable-rate.mp4": [
    ...src("640x360", "24"),
    "-vf",
    "setpts='if(lt(N,10),N/24,N/12)/TB'",
    "-fps_mode",
    "passthrough",
    ...x264,
  ],
  "fragmented.mp4": [...src("640x360", "24"), ...x264, "-movflags", "+frag_keyframe+empty_moov"],
  "vp9.webm": [
    ...src("320x180", "24"),
    "-c:v",
    "libvpx-vp9",
    "-deadline",
    "realtime",
    "-cpu-used",
    "8",
  ],
};

describe("clip facts read in-process", () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  beforeAll(async () => {
    tmp = await makeTempDir();
    await Promise.all(
      Object.entries({ ...READ, ...DECLINED }).map(([name, args]) =>
        run("ffmpeg", ["-v", "error", "-y", ...args, join(tmp.dir, name)]),
      ),
    );
  });
  afterAll(() => tmp.cleanup());
  const facts = async (name: string) =>
    mp4Facts(join(tmp.dir, name), (await stat(join(tmp.dir, name))).size);

  it("are ffprobe's, field for field, for plain H.264 clips of every size, rate, profile and range", async () => {
    for (const name of Object.keys(READ)) {
      const file = join(tmp.dir, name);
      expect({ name, facts: await facts(name) }).toEqual({ name, facts: await ffprobeFacts(file) });
      expect(await probe(file)).toEqual(await ffprobeFacts(file));
    }
    // Full range is what ffprobe calls yuvj420p; the film normalises such clips instead of copying them.
    expect((await facts("full-range-flag.mp4"))?.pixFmt).toBe("yuvj420p");
    expect((await facts("main-ntsc.mp4"))?.fpsRational).toBe("30000/1001");
  });

  it("are left to ffprobe for audio, other depths and chroma, variable rates, fragments and other codecs", async () => {
    for (const name of Object.keys(DECLINED)) {
      expect({ name, facts: await facts(name) }).toEqual({ name, facts: undefined });
      expect(await probe(join(tmp.dir, name))).toEqual(await ffprobeFacts(join(tmp.dir, name)));
    }
  });

  it("place every sample of a whole clip inside it: its last sample ends at or before the file's end", async () => {
    for (const name of Object.keys(READ)) {
      const size = (await stat(join(tmp.dir, name))).size;
      const end = (await readMp4(join(tmp.dir, name), size))?.samplesEndByte;
      expect({ name, inside: end !== undefined && end <= size }).toEqual({ name, inside: true });
    }
    // With its index up front, mdat is the file's last box: the samples end where the file does.
    const faststart = join(tmp.dir, "faststart-bframes.mp4");
    expect((await readMp4(faststart, (await stat(faststart)).size))?.samplesEndByte).toBe(
      (await stat(faststart)).size,
    );
  });

  it("refuse a clip cut inside its media data that ffprobe alone reads as whole", async () => {
    const whole = await readFile(join(tmp.dir, "faststart-bframes.mp4"));
    const torn = join(tmp.dir, "torn.mp4");
    await writeFile(torn, whole.subarray(0, Math.floor(whole.length * 0.4)));
    // The gap this closes: ffprobe reads the index up front and reports the full clip.
    expect((await ffprobeFacts(torn)).durationS).toBe(
      (await ffprobeFacts(join(tmp.dir, "faststart-bframes.mp4"))).durationS,
    );
    await expect(probe(torn)).rejects.toMatchObject({
      code: "not_video",
      message: expect.stringContaining(`cut short: its samples run to byte ${whole.length}`),
    });
  });

  it("say nothing of a file that is not a whole MP4, and probe gives ffprobe's verdict on it", async () => {
    const cut = join(tmp.dir, "cut.mp4");
    await writeFile(cut, (await readFile(join(tmp.dir, "high-1366x768-24.mp4"))).subarray(0, 4000));
    const junk = join(tmp.dir, "junk.mp4");
    await writeFile(junk, "not a video at all\n");
    for (const file of [cut, junk]) {
      expect(await mp4Facts(file, (await stat(file)).size)).toBeUndefined();
      await expect(probe(file)).rejects.toMatchObject({ code: "not_video" });
    }
  });
});
