import { execFile, type ExecFileException } from "node:child_process";
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { abortError } from "@hailuo/shared";
import { ffmpegPaths } from "./ffmpeg-env.js";

/** Longest an audio bed's ffprobe may take: a file swapped for a FIFO after the stat must not hang a run. */
const PROBE_TIMEOUT_MS = 30_000;

/** What a path is when it is not a regular file, in words. */
function kindOf(s: Awaited<ReturnType<typeof stat>>): string {
  if (s.isDirectory()) return "a directory";
  if (s.isFIFO()) return "a FIFO (named pipe)";
  if (s.isCharacterDevice() || s.isBlockDevice()) return "a device";
  if (s.isSocket()) return "a socket";
  return "not a regular file";
}

/**
 * Why `file` cannot be a film's audio bed, or undefined when it can: a regular file (symlinks
 * followed) that can be read and in which ffprobe finds an audio stream. The path's kind is
 * checked with stat before anything opens it: opening a FIFO blocks until a writer comes, and a
 * device like /dev/zero never ends. A missing ffprobe is not reported here (the ffmpeg check says so).
 */
export async function audioBedProblem(
  file: string,
  { signal }: { signal?: AbortSignal } = {},
): Promise<string | undefined> {
  const path = resolve(file);
  const s = await stat(path).catch((error: NodeJS.ErrnoException) => error);
  if (s instanceof Error)
    return s.code === "ENOENT"
      ? `audio bed ${path} not found`
      : `audio bed ${path} cannot be read (${s.code ?? s.message})`;
  if (!s.isFile()) return `audio bed ${path} is ${kindOf(s)}, not an audio file`;
  if (s.size === 0) return `audio bed ${path} is empty`;
  const denied = await access(path, constants.R_OK).then(
    () => undefined,
    (error: NodeJS.ErrnoException) => error.code ?? error.message,
  );
  if (denied) return `audio bed ${path} cannot be read (${denied})`;
  // `file:` so a name with a colon is never taken for an ffmpeg protocol.
  const args = [
    "-v",
    "error",
    "-select_streams",
    "a",
    "-show_entries",
    "stream=codec_type",
    "-of",
    "csv=p=0",
    `file:${path}`,
  ];
  const found = await new Promise<{ stdout: string; error?: ExecFileException }>((done) =>
    execFile(
      ffmpegPaths().ffprobe,
      args,
      { timeout: PROBE_TIMEOUT_MS, killSignal: "SIGKILL", signal },
      (error, stdout) => done({ stdout: String(stdout), error: error ?? undefined }),
    ),
  );
  if (found.error?.code === "ENOENT") return undefined;
  if (signal?.aborted) throw abortError(signal);
  if (found.error?.killed)
    return `audio bed ${path}: ffprobe did not finish within ${PROBE_TIMEOUT_MS / 1000} s`;
  if (!found.stdout.includes("audio"))
    return `audio bed ${path} has no audio stream ffprobe can read`;
  return undefined;
}
