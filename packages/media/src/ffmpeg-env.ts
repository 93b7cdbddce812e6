import { execFile } from "node:child_process";
import { promisify } from "node:util";
import ffmpeg from "fluent-ffmpeg";
import { HailuoError } from "@hailuo/shared";

/** ffmpeg or ffprobe is missing or too old to do the job. */
export class FfmpegMissingError extends HailuoError {
  constructor(message: string) {
    super("ffmpeg_missing", message, { retryable: false });
  }
}

/** ffmpeg ran and failed. */
export class FfmpegError extends HailuoError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("ffmpeg_failed", message, { ...options, retryable: false });
  }
}

const INSTALL_HINT = "install it with `sudo apt-get install -y ffmpeg` (or set FFMPEG_PATH and FFPROBE_PATH)";
/** Oldest ffmpeg major version we support (xfade, gradients and drawtext textfile behave as we expect from 5 on). */
export const MIN_FFMPEG_MAJOR = 5;

let checked: Promise<{ ffmpeg: string; ffprobe: string; version: string }> | undefined;

/**
 * Finds ffmpeg and ffprobe (PATH or FFMPEG_PATH / FFPROBE_PATH), checks the version once per
 * process and points fluent-ffmpeg at them. Throws FfmpegMissingError with an install hint.
 */
export function ensureFfmpeg(): Promise<{ ffmpeg: string; ffprobe: string; version: string }> {
  checked ??= (async () => {
    const ffmpegPath = process.env.FFMPEG_PATH || "ffmpeg";
    const ffprobePath = process.env.FFPROBE_PATH || "ffprobe";
    const run = promisify(execFile);
    let version = "";
    try {
      ffmpeg.setFfmpegPath(ffmpegPath);
      ffmpeg.setFfprobePath(ffprobePath);
      // fluent-ffmpeg checks every `-f` input against `ffmpeg -formats`, once per process: fetched
      // here, alongside the version checks, instead of in front of the first job that needs it.
      const formats = new Promise<void>((done) => ffmpeg.getAvailableFormats(() => done()));
      const [{ stdout }] = await Promise.all([run(ffmpegPath, ["-hide_banner", "-version"]), run(ffprobePath, ["-hide_banner", "-version"]), formats]);
      version = /version\s+n?(\S+)/.exec(stdout)?.[1] ?? "unknown";
    } catch {
      throw new FfmpegMissingError(`ffmpeg/ffprobe not found (${ffmpegPath}, ${ffprobePath}): ${INSTALL_HINT}`);
    }
    const major = Number(/^(\d+)/.exec(version)?.[1]);
    if (Number.isFinite(major) && major < MIN_FFMPEG_MAJOR) {
      throw new FfmpegMissingError(`ffmpeg ${version} is too old (need ${MIN_FFMPEG_MAJOR} or newer): ${INSTALL_HINT}`);
    }
    return { ffmpeg: ffmpegPath, ffprobe: ffprobePath, version };
  })();
  checked.catch(() => (checked = undefined));
  return checked;
}
