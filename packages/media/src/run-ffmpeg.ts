import { randomBytes } from "node:crypto";
import { rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import ffmpeg, { type FfmpegCommand } from "fluent-ffmpeg";
import { abortError } from "@hailuo/shared";
import { FfmpegError, ensureFfmpeg } from "./ffmpeg-env.js";

/** Progress of one ffmpeg job, 0–100 (clamped: fluent-ffmpeg can report more than 100). */
export type ProgressFn = (percent: number) => void;

/** Options every media operation accepts. */
export interface MediaOptions {
  signal?: AbortSignal;
  onProgress?: ProgressFn;
}

/** Seconds of output written so far, from a line of ffmpeg's stderr ("… time=00:01:02.50 …"). */
function stderrSeconds(line: string): number | undefined {
  const m = /time=(\d+):(\d+):(\d+(?:\.\d+)?)/.exec(line);
  return m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) : undefined;
}

/**
 * Runs a fluent-ffmpeg command (whose builder must call `.output(tmpOut)`) that writes `out`
 * through a temp file in the same folder, renamed
 * into place only on success: a failed or cancelled job leaves no half-written output behind.
 */
export async function runToFile(
  build: (tmpOut: string) => FfmpegCommand,
  out: string,
  { signal, onProgress, expectedDurationS }: MediaOptions & { expectedDurationS?: number } = {},
): Promise<void> {
  await ensureFfmpeg();
  if (signal?.aborted) throw abortError(signal);
  const ext = basename(out).includes(".") ? basename(out).slice(basename(out).lastIndexOf(".")) : "";
  const tmp = join(dirname(out), `.${basename(out)}.${randomBytes(4).toString("hex")}.tmp${ext}`);
  try {
    await runCommand(build(tmp), out, { signal, onProgress, expectedDurationS });
    await rename(tmp, out);
    onProgress?.(100);
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

/**
 * Runs a fluent-ffmpeg command as it is (outputs named by the builder). Progress comes from
 * ffmpeg's own `time=` on stderr: fluent-ffmpeg's "progress" event would run a hidden ffprobe of
 * the input before every job, and our callers already know how long their output will be.
 */
export async function runCommand(command: FfmpegCommand, what: string, { signal, onProgress, expectedDurationS }: MediaOptions & { expectedDurationS?: number } = {}): Promise<void> {
  await ensureFfmpeg();
  if (signal?.aborted) throw abortError(signal);
  await new Promise<void>((resolve, reject) => {
    const onAbort = () => command.kill("SIGKILL");
    signal?.addEventListener("abort", onAbort, { once: true });
    command
      .on("stderr", (line: string) => {
        const done = onProgress && expectedDurationS ? stderrSeconds(line) : undefined;
        if (done !== undefined) onProgress!(Math.max(0, Math.min(100, (done / expectedDurationS!) * 100)));
      })
      .on("error", (err: Error, _stdout: string | null, stderr: string | null) => {
        signal?.removeEventListener("abort", onAbort);
        if (signal?.aborted) return reject(abortError(signal));
        const tail = (stderr ?? "").split("\n").filter((l) => l.trim()).slice(-4).join(" | ");
        reject(new FfmpegError(`ffmpeg failed writing ${basename(what)}: ${err.message.split("\n")[0]}${tail ? ` — ${tail}` : ""}`, { cause: err }));
      })
      .on("end", () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      })
      .run();
  });
}

/** A fresh fluent-ffmpeg command (paths set by ensureFfmpeg). */
export function command(): FfmpegCommand {
  return ffmpeg().addOption("-hide_banner");
}

/** A command reading a concat script (paths absolute, so `-safe 0`). */
export function concatInput(script: string): FfmpegCommand {
  return command().input(script).inputOptions(["-f", "concat", "-safe", "0"]);
}
