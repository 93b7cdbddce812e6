import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

/** Writes a JPEG and a WebP of 640×360 and a GIF into `dir` with one ffmpeg (test helper). */
export async function ffmpegImages(dir: string): Promise<void> {
  await promisify(execFile)("ffmpeg", [
    ...["-v", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=1"],
    ...["-frames:v", "1", join(dir, "key.jpg")],
    ...["-frames:v", "1", "-c:v", "libwebp", join(dir, "key.webp")],
    ...["-frames:v", "1", join(dir, "anim.gif")],
  ]);
}
