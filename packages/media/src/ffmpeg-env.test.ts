import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
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

it("keeps a passed version check on disk by the tools' identity, and checks a replaced tool again", async () => {
  const tmp = await makeTempDir();
  const calls = join(tmp.dir, "calls.log");
  const tool = (name: string, version: string) =>
    writeFile(
      join(tmp.dir, "bin", name),
      `#!/bin/sh\necho ${name} >> ${calls}\necho "${name} version ${version} Copyright"\n`,
      { mode: 0o755 },
    );
  const { checkFfmpeg } = await import("./index.js");
  // Each check below names the tools by another path (a link to the same folder), so this
  // process's own memory of a check never answers: only the disk can.
  const checkVia = async (link: string) => {
    await symlink(join(tmp.dir, "bin"), join(tmp.dir, link));
    process.env.FFMPEG_PATH = join(tmp.dir, link, "ffmpeg");
    process.env.FFPROBE_PATH = join(tmp.dir, link, "ffprobe");
    return checkFfmpeg();
  };
  const runs = async () => (await readFile(calls, "utf8").catch(() => "")).split("\n").length - 1;
  try {
    await mkdir(join(tmp.dir, "bin"));
    await tool("ffmpeg", "6.1");
    await tool("ffprobe", "6.1");
    expect((await checkVia("a")).version).toBe("6.1");
    expect(await runs()).toBe(2);
    expect((await checkVia("b")).version).toBe("6.1");
    expect(await runs(), "the second check ran no tool").toBe(2);
    // An upgrade: another binary at the same path is checked anew.
    await tool("ffmpeg", "7.0.2");
    expect((await checkVia("c")).version).toBe("7.0.2");
    expect(await runs()).toBe(4);
  } finally {
    delete process.env.FFMPEG_PATH;
    delete process.env.FFPROBE_PATH;
    await tmp.cleanup();
  }
});
