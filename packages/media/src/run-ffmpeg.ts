import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { setPriority } from "node:os";
import { rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { FfmpegCommand } from "fluent-ffmpeg";
import { abortError } from "@hailuo/shared";
import { FfmpegError, ensureFfmpeg, ffmpegPaths, fluent, missingTool } from "./ffmpeg-env.js";
import { trackChild } from "./media-work.js";

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

/** Reports progress (0–100) from stderr text that may hold a `time=`, when the output's length is known. */
function progressFrom(
  text: string,
  onProgress: ProgressFn | undefined,
  expectedDurationS: number | undefined,
): void {
  const done = onProgress && expectedDurationS ? stderrSeconds(text) : undefined;
  if (done !== undefined)
    onProgress!(Math.max(0, Math.min(100, (done / expectedDurationS!) * 100)));
}

/** ffmpeg's last four lines of stderr, for an error message. */
function stderrTail(stderr: string): string {
  return stderr
    .split("\n")
    .filter((l) => l.trim())
    .slice(-4)
    .join(" | ");
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
  await throughTemp(out, (tmp) =>
    runCommand(build(tmp), out, { signal, onProgress, expectedDurationS }),
  );
  onProgress?.(100);
}

/** Writes `out` through a temp file beside it, renamed into place only when `write` succeeds. */
export async function throughTemp(
  out: string,
  write: (tmp: string) => Promise<void>,
): Promise<void> {
  const ext = basename(out).includes(".")
    ? basename(out).slice(basename(out).lastIndexOf("."))
    : "";
  const tmp = join(dirname(out), `.${basename(out)}.${randomBytes(4).toString("hex")}.tmp${ext}`);
  try {
    await write(tmp);
    await rename(tmp, out);
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

/** Options of `runFfmpeg`. */
export interface RunFfmpegOptions extends MediaOptions {
  /** Seconds of output expected: progress is `time=` over it. */
  expectedDurationS?: number;
  /**
   * Niceness the ffmpeg runs at (0–19): work done while a run goes on yields the CPU to it.
   * @default 0
   */
  niceness?: number;
  /** Told the ffmpeg's pid once it started (to change its priority later); and when it ended. */
  onProcess?: (pid: number, running: boolean) => void;
}

/**
 * Runs ffmpeg with `args` as they are (outputs named in them), straight from `spawn`: no
 * fluent-ffmpeg, which asks ffmpeg for its formats and encoders before its first job (two more
 * ffmpeg starts). Resolves with the video frames its last stats line counts.
 */
export function runFfmpeg(
  args: string[],
  what: string,
  { signal, onProgress, expectedDurationS, niceness = 0, onProcess }: RunFfmpegOptions = {},
): Promise<{ videoFrames?: number }> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  const ffmpegPath = ffmpegPaths().ffmpeg;
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegPath, ["-hide_banner", "-nostdin", "-y", ...args], {
      stdio: ["ignore", "ignore", "pipe"],
      signal,
    });
    trackChild(child);
    // Right after the start, not through `nice`: no other program is needed, and the few
    // milliseconds before are ffmpeg's own start.
    if (niceness && child.pid) {
      try {
        setPriority(child.pid, niceness);
      } catch {
        // A system that refuses only makes the work less polite, never wrong.
      }
    }
    const pid = child.pid;
    if (pid && onProcess) {
      onProcess(pid, true);
      child.once("exit", () => onProcess(pid, false));
    }
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-8192);
      progressFrom(
        chunk.split(/[\r\n]/).findLast((l) => l.includes("time=")) ?? "",
        onProgress,
        expectedDurationS,
      );
    });
    child.on("error", (err: NodeJS.ErrnoException) => {
      if (signal?.aborted) reject(abortError(signal));
      else if (err.code === "ENOENT") reject(missingTool(ffmpegPath));
      else
        reject(
          new FfmpegError(`ffmpeg failed writing ${basename(what)}: ${err.message}`, {
            cause: err,
          }),
        );
    });
    child.on("close", (code) => {
      if (signal?.aborted) return reject(abortError(signal));
      if (code === 0) {
        // ffmpeg's last stats line counts the video frames it wrote.
        const frames = [...stderr.matchAll(/frame=\s*(\d+)/g)].pop()?.[1];
        return resolve({ videoFrames: frames === undefined ? undefined : Number(frames) });
      }
      const tail = stderrTail(stderr);
      reject(
        new FfmpegError(
          `ffmpeg failed writing ${basename(what)}: exit ${code}${tail ? ` — ${tail}` : ""}`,
        ),
      );
    });
  });
}

/**
 * Joins what a concat script lists by stream copy into `out` (+faststart), through a temp file.
 * This call goes around fluent-ffmpeg (`runFfmpeg`): a stream copy needs neither of the format
 * and encoder lists fluent asks for first, which made up a third of `hailuo assemble`'s time
 * with plain cuts.
 */
export async function copyConcat(
  script: string,
  out: string,
  {
    map = "0",
    signal,
    onProgress,
    expectedDurationS,
  }: MediaOptions & { map?: string; expectedDurationS?: number } = {},
): Promise<{ videoFrames?: number }> {
  if (signal?.aborted) throw abortError(signal);
  let wrote: number | undefined;
  await throughTemp(out, async (tmp) => {
    ({ videoFrames: wrote } = await runFfmpeg(
      [
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        script,
        "-map",
        map,
        "-c",
        "copy",
        "-movflags",
        "+faststart",
        tmp,
      ],
      out,
      { signal, onProgress, expectedDurationS },
    ));
  });
  onProgress?.(100);
  return { videoFrames: wrote };
}

/**
 * Runs a fluent-ffmpeg command as it is (outputs named by the builder). Progress comes from
 * ffmpeg's own `time=` on stderr: fluent-ffmpeg's "progress" event would run a hidden ffprobe of
 * the input before every job, and our callers already know how long their output will be.
 */
export async function runCommand(
  command: FfmpegCommand,
  what: string,
  { signal, onProgress, expectedDurationS }: MediaOptions & { expectedDurationS?: number } = {},
): Promise<void> {
  await ensureFfmpeg();
  if (signal?.aborted) throw abortError(signal);
  await new Promise<void>((resolve, reject) => {
    // fluent-ffmpeg spawns ffmpeg only after its own asynchronous checks, and its kill() before
    // then does nothing: an abort in that window would let the whole job run. So the abort is
    // looked at again the moment ffmpeg starts.
    const onAbort = () => {
      if (started) command.kill("SIGKILL");
    };
    let started = false;
    signal?.addEventListener("abort", onAbort, { once: true });
    command
      .on("start", () => {
        started = true;
        const proc = (command as unknown as { ffmpegProc?: ChildProcess }).ffmpegProc;
        if (proc) trackChild(proc);
        if (signal?.aborted) command.kill("SIGKILL");
      })
      .on("stderr", (line: string) => {
        progressFrom(line, onProgress, expectedDurationS);
      })
      .on("error", (err: Error, _stdout: string | null, stderr: string | null) => {
        signal?.removeEventListener("abort", onAbort);
        if (signal?.aborted) return reject(abortError(signal));
        const tail = stderrTail(stderr ?? "");
        reject(
          new FfmpegError(
            `ffmpeg failed writing ${basename(what)}: ${err.message.split("\n")[0]}${tail ? ` — ${tail}` : ""}`,
            { cause: err },
          ),
        );
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
  const ffmpeg = fluent();
  return ffmpeg().addOption("-hide_banner");
}

/** A command reading a concat script (paths absolute, so `-safe 0`). */
export function concatInput(script: string): FfmpegCommand {
  return command().input(script).inputOptions(["-f", "concat", "-safe", "0"]);
}
