import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { HailuoError, abortError } from "@hailuo/shared";
import { FfmpegError, checkFfmpeg } from "./ffmpeg-env.js";
import { probe } from "./probe.js";
import type { MediaOptions } from "./run-ffmpeg.js";
import { runFfmpeg, throughTemp } from "./run-ffmpeg.js";

/** The last frame of a clip could not be taken: ffmpeg failed, or the file holds no frame. */
export class LastFrameError extends HailuoError {
  constructor(
    code: "ffmpeg_failed" | "not_video",
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(code, message, { ...options, retryable: false });
  }
}

/** A clip's last frame, written as a PNG. */
export interface LastFrame {
  /** Where it was written (the `out` asked for). */
  file: string;
  /** The PNG's bytes, as written. */
  bytes: Buffer;
  /** Hex SHA-256 of the PNG. */
  sha256: string;
}

/** Options of `extractLastFrame`. */
export interface LastFrameOptions extends Pick<MediaOptions, "signal"> {
  /**
   * How far before the end frames are written (`-sseof`): ffmpeg seeks to the key frame before
   * it and decodes from there, so any value that reaches back past one frame is exact; a clip
   * that gives no frame from there is decoded whole. @default 0.25 (frame rates over 4 fps)
   */
  seekFromEndS?: number;
  /**
   * Scales a smaller frame up (bicubic, its aspect kept) until its shorter side has this many
   * pixels, for a model that refuses smaller pictures; a frame as large already is left exactly
   * as decoded. @default 0 (never scaled)
   */
  minShortSidePx?: number;
}

/**
 * Writes the last frame of `clip` to `out` as a PNG (lossless, so the frame a next shot starts
 * on is the decoded frame itself) through a temp file, renamed into place only when whole.
 * ffmpeg starts `seekFromEndS` before the end (`-sseof`), decodes every frame to the end, and
 * `-update 1` keeps overwriting the one picture, so what remains is the last frame decoded, on
 * whatever frame the clip's key frames fall (scaled up only when `minShortSidePx` asks). Throws
 * LastFrameError (`not_video` when the clip yields no frame, `ffmpeg_failed` otherwise) or
 * FfmpegMissingError.
 */
export async function extractLastFrame(
  clip: string,
  out: string,
  options: LastFrameOptions = {},
): Promise<LastFrame> {
  const { signal, seekFromEndS = 0.25, minShortSidePx = 0 } = options;
  // The check, not ensureFfmpeg: ffmpeg is spawned here directly, fluent-ffmpeg needs no warming.
  await checkFfmpeg();
  if (signal?.aborted) throw abortError(signal);
  const size = minShortSidePx ? await probe(clip).catch(() => undefined) : undefined;
  const short = size ? Math.min(size.width, size.height) : Infinity;
  const scale = short < minShortSidePx ? minShortSidePx / short : 1;
  const upscale =
    scale > 1
      ? [
          "-vf",
          `scale=${Math.ceil(size!.width * scale)}:${Math.ceil(size!.height * scale)}:flags=bicubic`,
        ]
      : [];
  let bytes: Buffer | undefined;
  try {
    await throughTemp(out, async (tmp) => {
      // Only the frames near the end are encoded (each over the one before); from the start
      // when the end gave none (a clip whose frames are further apart than `seekFromEndS`).
      for (const from of [["-sseof", `-${seekFromEndS}`], []]) {
        const { videoFrames } = await runFfmpeg(
          [
            ...[...from, "-i", clip],
            ...["-map", "0:v:0", "-an", ...upscale],
            // Every decoded frame written as it comes (no rate conversion that could drop the
            // last one), each over the one before.
            ...["-vsync", "passthrough", "-update", "1", "-c:v", "png", "-f", "image2", tmp],
          ],
          out,
          { signal },
        );
        bytes = videoFrames ? await readFile(tmp).catch(() => undefined) : undefined;
        if (bytes?.length) return;
      }
      throw new LastFrameError(
        "not_video",
        `${basename(clip)} yielded no frame to take its last one from`,
      );
    });
  } catch (error) {
    if (error instanceof LastFrameError || signal?.aborted) throw error;
    if (error instanceof FfmpegError)
      throw new LastFrameError(
        /No such file|Invalid data|does not contain any stream|matches no streams/i.test(
          error.message,
        )
          ? "not_video"
          : "ffmpeg_failed",
        `cannot take the last frame of ${basename(clip)}: ${error.message}`,
        { cause: error },
      );
    throw error;
  }
  return {
    file: out,
    bytes: bytes!,
    sha256: createHash("sha256").update(bytes!).digest("hex"),
  };
}
