import { execFile } from "node:child_process";
import { copyFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeErrors, makeTempDir } from "./index.js";

describe("decodeErrors", () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let clip: string;
  beforeAll(async () => {
    tmp = await makeTempDir();
    clip = join(tmp.dir, "clip.mp4");
    await promisify(execFile)(process.env.FFMPEG_PATH || "ffmpeg", [
      ...["-v", "error", "-f", "lavfi", "-i", "testsrc=s=320x240:r=24:d=2"],
      ...["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", clip],
    ]);
  });
  afterAll(() => tmp.cleanup());

  it("after a clean clip, still finds a cut copy and a copy with rotted bytes", async () => {
    expect(await decodeErrors(clip)).toBe("");
    const same = join(tmp.dir, "same.mp4");
    await copyFile(clip, same);
    expect(await decodeErrors(same), "an identical copy is clean").toBe("");

    const bytes = await readFile(clip);
    const cut = join(tmp.dir, "cut.mp4");
    await writeFile(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    expect(await decodeErrors(cut)).not.toBe("");

    // Garbage over a stretch of the media data, the size unchanged.
    const rotted = Buffer.from(bytes);
    rotted.fill(0x5a, Math.floor(rotted.length * 0.3), Math.floor(rotted.length * 0.5));
    const rot = join(tmp.dir, "rot.mp4");
    await writeFile(rot, rotted);
    expect(await decodeErrors(rot)).not.toBe("");
  });
});
