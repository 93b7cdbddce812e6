import { statfs, unlink, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { Manifest } from "@hailuo/manifest";
import { audioBedProblem, checkFfmpeg } from "@hailuo/media";
import { HailuoError } from "@hailuo/shared";
import type { PlanItem } from "./plan.js";

/**
 * Disk space a generated second of video needs, in bytes: Hailuo 02 at 768p is H.264 at
 * ~4–6 Mbit/s (0.5–0.75 MB/s); 1 MB/s leaves room for the posters, previews and film made from it.
 */
export const DISK_BYTES_PER_SECOND = 1_000_000;

/** Something must be fixed before any money is spent. */
export class PreflightError extends HailuoError {
  constructor(problems: string[]) {
    super(
      "preflight",
      `nothing was submitted; fix this first:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
      { retryable: false, details: { problems } },
    );
  }
}

/** Options of `preflight`. */
export interface PreflightOptions {
  /** Bytes to reserve per second of video still to generate. @default DISK_BYTES_PER_SECOND */
  diskBytesPerSecond?: number;
}

async function writable(dir: string): Promise<string | undefined> {
  const probe = join(dir, `.hailuo-write-test-${process.pid}`);
  try {
    await writeFile(probe, "ok");
    await unlink(probe);
    return undefined;
  } catch (error) {
    return `${dir} is not writable (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
  }
}

/**
 * Every check that can be made before the first submit, so a run never pays for clips it cannot
 * keep: ffmpeg and ffprobe run, the run folder and clips/ are writable, the disk has room for the
 * clips still to generate, the audio bed is a readable audio file (never opened if it is not a
 * regular file), no template variable was left unfilled.
 * Throws PreflightError listing every problem.
 */
export async function preflight(
  runDir: string,
  manifest: Manifest,
  toGenerate: PlanItem[],
  options: PreflightOptions = {},
): Promise<void> {
  const problems: string[] = [];
  await checkFfmpeg().catch((error: Error) => problems.push(error.message));
  const clips = join(runDir, "clips");
  for (const dir of [runDir, clips]) {
    const p = await writable(dir);
    if (p) problems.push(p);
  }
  const seconds = toGenerate.reduce((s, i) => s + Number(i.input.duration), 0);
  const needBytes = seconds * (options.diskBytesPerSecond ?? DISK_BYTES_PER_SECOND);
  const fs = await statfs(clips).catch(() => undefined);
  if (fs && needBytes > 0 && fs.bavail * fs.bsize < needBytes) {
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    problems.push(
      `${clips} has ${mb(fs.bavail * fs.bsize)} free; ${toGenerate.length} clip(s) (${seconds} s of video) need about ${mb(needBytes)}`,
    );
  }
  const audio = manifest.assemble?.audio;
  if (audio) {
    const file = resolve(dirname(manifest.file), audio.file);
    // A regular file ffprobe reads as audio: a FIFO, a device or a directory would pass an
    // existence check and then hang or fail the film after every clip was paid for.
    const problem = await audioBedProblem(file);
    if (problem) problems.push(`${problem} (assemble.audio.file in ${manifest.file})`);
  }
  for (const item of toGenerate) {
    const hole = /\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}/.exec(item.input.prompt);
    if (hole)
      problems.push(`scene ${item.sceneId}: undefined variable {{${hole[1]}}} in its prompt`);
  }
  if (problems.length) throw new PreflightError([...new Set(problems)]);
}
