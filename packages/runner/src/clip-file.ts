import { createHash } from "node:crypto";
import { createReadStream, statSync } from "node:fs";
import { stat, unlink } from "node:fs/promises";
import { resolve, sep } from "node:path";
import { downloadVideo } from "@hailuo/core";
import { probe } from "@hailuo/media";
import { HailuoError } from "@hailuo/shared";
import type { ClipFacts } from "./journal-store.js";
import type { PlanItem } from "./plan.js";

/** A downloaded file is not the clip that was asked for. */
export class VerifyError extends HailuoError {
  constructor(message: string) {
    super("verify", message, { retryable: true });
  }
}

/** The file name of a paid clip: unique per request, so no paid clip is ever overwritten. */
export function clipFileName(item: Pick<PlanItem, "sceneId" | "take" | "scene">, requestId: string): string {
  const take = item.scene.takes > 1 ? `-take${item.take}` : "";
  return `${item.sceneId}${take}-${requestId.replace(/[^A-Za-z0-9]/g, "").slice(0, 8)}.mp4`;
}

/** Joins a relative path under `root`, refusing anything that would land outside it. */
export function insideDir(root: string, rel: string): string {
  const base = resolve(root);
  const full = resolve(base, rel);
  if (full !== base && !full.startsWith(base + sep)) throw new HailuoError("unsafe_path", `refusing to write outside ${root}: ${rel}`);
  return full;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * True when the journaled clip is on disk, whole and unchanged: same size and modification time
 * as when it was saved, else (an older journal, a touched file) the same sha256.
 */
export async function clipIntact(runDir: string, clip: ClipFacts | undefined): Promise<boolean> {
  const quick = clipUnchanged(runDir, clip);
  return quick ?? (await sha256File(insideDir(runDir, clip!.file))) === clip!.sha256;
}

/**
 * The cheap part of `clipIntact`, one synchronous stat (a resume checks thousands at once, and
 * a promise per file costs more than the stat): true unchanged, false missing or resized,
 * undefined when only its hash can tell.
 */
export function clipUnchanged(runDir: string, clip: ClipFacts | undefined): boolean | undefined {
  if (!clip) return false;
  const info = statSync(insideDir(runDir, clip.file), { throwIfNoEntry: false });
  if (!info || info.size !== clip.bytes) return false;
  return clip.mtimeMs !== undefined && info.mtimeMs === clip.mtimeMs ? true : undefined;
}

/** Checks that a downloaded file is a plausible clip of the asked length. */
async function verifyClip(path: string, expectedS: number): Promise<Pick<ClipFacts, "durationS" | "width" | "height" | "video">> {
  const info = await probe(path).catch((error: HailuoError) => {
    // No ffprobe is our side's fault, not the clip's: it must stop the run, not condemn the clip.
    if (error.code === "ffmpeg_missing") throw error;
    throw new VerifyError(`downloaded file ${path} is not a readable video: ${error.message}`);
  });
  if (info.width <= 0 || info.height <= 0) throw new VerifyError(`clip ${path} has no picture size (${info.width}x${info.height})`);
  if (info.durationS < expectedS - 0.75 || info.durationS > expectedS + 2) {
    throw new VerifyError(`clip ${path} lasts ${info.durationS.toFixed(2)} s; ${expectedS} s were asked for`);
  }
  // Probed once, here: the media stage reads these facts from the journal instead of probing again.
  return { durationS: info.durationS, width: info.width, height: info.height, video: info };
}

/**
 * Downloads a paid clip from its fal URL into the run folder and verifies it; a file that fails
 * verification is removed (the paid source is still at the URL).
 */
export async function saveClip(runDir: string, item: PlanItem, requestId: string, videoUrl: string, fileSize: number | undefined, signal: AbortSignal): Promise<ClipFacts> {
  const rel = `clips/${clipFileName(item, requestId)}`;
  const path = insideDir(runDir, rel);
  const dl = await downloadVideo(videoUrl, path, { expectedBytes: fileSize, signal });
  try {
    const facts = await verifyClip(path, Number(item.input.duration));
    return { file: rel, bytes: dl.bytes, sha256: dl.sha256, mtimeMs: (await stat(path)).mtimeMs, ...facts };
  } catch (error) {
    await unlink(path).catch(() => {});
    throw error;
  }
}
