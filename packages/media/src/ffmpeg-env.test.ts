import { join } from "node:path";
import { expect, it } from "vitest";
import { makeTempDir } from "@hailuo/test-utils";

// ensureFfmpeg remembers a check per pair of paths: these paths were never checked before.
it("a missing ffmpeg gives one clear error that says how to install it, whichever call meets it first", async () => {
  process.env.FFMPEG_PATH = "/nonexistent/ffmpeg";
  process.env.FFPROBE_PATH = "/nonexistent/ffprobe";
  const tmp = await makeTempDir();
  try {
    const { checkFfmpeg, ensureFfmpeg, probe, concatClips } = await import("./index.js");
    const missing = {
      code: "ffmpeg_missing",
      retryable: false,
      message: expect.stringContaining("apt-get install -y ffmpeg"),
    };
    await expect(checkFfmpeg()).rejects.toMatchObject(missing);
    await expect(ensureFfmpeg()).rejects.toMatchObject(missing);
    await expect(probe("/dev/null")).rejects.toMatchObject(missing);
    // The stream-copy join runs ffmpeg without the version check: it names the missing tool itself.
    const info = {
      durationS: 6,
      width: 64,
      height: 36,
      fps: 24,
      fpsRational: "24/1",
      codec: "h264",
      pixFmt: "yuv420p",
      timeBase: "1/12288",
      sizeBytes: 1,
      hasAudio: false,
    };
    const clip = join(tmp.dir, "a.mp4");
    await expect(
      concatClips([clip, clip], join(tmp.dir, "film.mp4"), { known: new Map([[clip, info]]) }),
    ).rejects.toMatchObject(missing);
  } finally {
    delete process.env.FFMPEG_PATH;
    delete process.env.FFPROBE_PATH;
    await tmp.cleanup();
  }
});
