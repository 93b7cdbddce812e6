import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { loadManifest, type Manifest } from "@hailuo/manifest";

// Test helpers for the family's endpoints: real images made by ffmpeg, real frames, real PSNR.

const run = promisify(execFile);
const ffmpeg = process.env.FFMPEG_PATH || "ffmpeg";

export const SEED = "fal-ai/minimax/hailuo-02/standard/text-to-video";
export const I2V_02 = "fal-ai/minimax/hailuo-02/standard/image-to-video";
export const T2V_23 = "fal-ai/minimax/hailuo-2.3/standard/text-to-video";

/**
 * Writes `images/start.png` and `images/end.png` (640×360 gradients, unlike each other) into
 * `dir` with one ffmpeg: smooth pictures, so a frame compared with them is judged on the frame,
 * not on chroma subsampling at sharp edges.
 */
export async function makeImages(dir: string): Promise<{ start: string; end: string }> {
  await mkdir(join(dir, "images"), { recursive: true });
  const start = join(dir, "images", "start.png");
  const end = join(dir, "images", "end.png");
  const gradient = (c0: string, c1: string, x0: number) =>
    `gradients=s=640x360:c0=${c0}:c1=${c1}:x0=${x0}:y0=0:x1=${640 - x0}:y1=360:nb_colors=2`;
  await run(ffmpeg, [
    ...["-v", "error", "-y"],
    ...["-f", "lavfi", "-i", gradient("0x2050a0", "0xe0a040", 0)],
    ...["-f", "lavfi", "-i", gradient("0x803020", "0x30c080", 640)],
    ...["-map", "0", "-frames:v", "1", start],
    ...["-map", "1", "-frames:v", "1", end],
  ]);
  return { start, end };
}

/**
 * The mixed manifest, written into `dir` with its images and loaded: the seed's
 * text-to-video (10 s), a scene continuing it (two takes), a start and an end image on Hailuo 02
 * image-to-video, Hailuo 2.3 text-to-video, and a scene continuing the second one.
 */
export async function mixedManifest(dir: string, extra = ""): Promise<Manifest> {
  await makeImages(dir);
  const file = join(dir, "mixed.yaml");
  await writeFile(
    file,
    `name: mixed
scenes:
  - id: dawn
    prompt: Harbour at dawn
    duration: 10
  - id: gull
    prompt: A gull takes off from the same post
    continue_from: previous
    takes: 2
  - id: boat
    prompt: A boat crosses from start to end
    image: images/start.png
    end_image: images/end.png
  - id: night
    prompt: The harbour at night
    model: ${T2V_23}
  - id: wake
    prompt: The wake spreads behind the gull
    continue_from: gull
${extra}`,
  );
  return loadManifest(file);
}

/** A picture to compare: an image file, or a clip's first or last frame. */
export type Picture = string | { clip: string; frame: "first" | "last" };

/**
 * PSNR in dB of pairs of pictures, each scaled to 320×180, with one plain ffmpeg (a psnr filter
 * per pair; Infinity when equal): a clip's last frame is the first of its last quarter second
 * reversed.
 */
export async function psnrs(pairs: [Picture, Picture][]): Promise<number[]> {
  const inputs = pairs.flat();
  const args = inputs.flatMap((p) =>
    typeof p === "string"
      ? ["-i", p]
      : [...(p.frame === "last" ? ["-sseof", "-0.25"] : []), "-i", p.clip],
  );
  const pick = (p: Picture, n: number) =>
    `[${n}:v]${typeof p !== "string" && p.frame === "last" ? "reverse," : ""}trim=end_frame=1,` +
    `scale=320:180,format=rgb24[p${n}]`;
  const graph = [
    ...inputs.map(pick),
    ...pairs.map((_, i) => `[p${2 * i}][p${2 * i + 1}]psnr[q${i}]`),
  ].join(";");
  const { stderr } = await run(ffmpeg, [
    ...["-hide_banner", ...args, "-filter_complex", graph],
    ...pairs.flatMap((_, i) => ["-map", `[q${i}]`, "-f", "null", "-"]),
  ]);
  // One summary line per psnr filter, in the order of the graph.
  const found = [...stderr.matchAll(/Parsed_psnr_(\d+).*average:(inf|[\d.]+)/g)]
    .map((m) => [Number(m[1]), m[2] === "inf" ? Infinity : Number(m[2])] as const)
    .sort((a, b) => a[0] - b[0])
    .map(([, db]) => db);
  if (found.length !== pairs.length)
    throw new Error(`expected ${pairs.length} PSNR lines from ffmpeg: ${stderr.slice(-400)}`);
  return found;
}

/** PSNR in dB of two pictures (see `psnrs`). */
export async function psnr(a: Picture, b: Picture): Promise<number> {
  return (await psnrs([[a, b]]))[0]!;
}
