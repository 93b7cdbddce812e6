import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { HailuoError, removeDeadPidDirs, type ErrorCode } from "@hailuo/shared";

/** A file operation of the media package failed; `code` says what kind of failure (never a bare errno). */
export class MediaIoError extends HailuoError {
  constructor(code: ErrorCode, message: string, cause?: unknown) {
    super(code, message, { retryable: false, cause });
  }
}

const FULL = new Set(["ENOSPC", "EDQUOT"]);
const DENIED = new Set(["EACCES", "EPERM", "EROFS"]);

/**
 * The error a media operation throws for `error`: a HailuoError as it is, a full disk as
 * `disk_full`, a refused write as `unwritable`, anything else (ENOENT, EXDEV, EISDIR…) as
 * `fallback`, with the errno and `what` in the message.
 */
export function mediaIoError(error: unknown, fallback: ErrorCode, what: string): HailuoError {
  if (error instanceof HailuoError) return error;
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  const code: ErrorCode =
    errno && FULL.has(errno) ? "disk_full" : errno && DENIED.has(errno) ? "unwritable" : fallback;
  const message = error instanceof Error ? error.message : String(error);
  return new MediaIoError(code, `${what}: ${message}`, error);
}

// What this process has started and not yet cleaned up. A process that exits while they are live
// (a second Ctrl-C calls process.exit) kills the children and removes the folders on its way out:
// an orphaned ffmpeg would go on encoding into a folder nobody removes.
const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHooked = false;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on("exit", () => {
    for (const child of liveChildren) child.kill("SIGKILL");
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** Holds an ffmpeg child until it exits; if this process exits first, the child is killed. */
export function trackChild(child: ChildProcess): void {
  hookExit();
  if (child.exitCode !== null || child.signalCode !== null) return;
  liveChildren.add(child);
  const forget = () => liveChildren.delete(child);
  child.once("exit", forget).once("error", forget);
}

/**
 * Removes scratch folders (`.<prefix><pid>-XXXXXX`) whose process is gone: one killed outright
 * (SIGKILL, the OOM killer) could not remove its own, and a film's pieces can weigh gigabytes.
 * A folder of a live process, or of a pid reused since, is left alone.
 */
export async function removeDeadWorkDirs(dir: string, prefix: string): Promise<void> {
  const pattern = new RegExp(`^\\.${prefix}(\\d+)-`);
  await removeDeadPidDirs(dir, (name) => Number(pattern.exec(name)?.[1]) || undefined);
}

/**
 * Runs `fn` with a scratch folder beside `dest` (a hidden `.<prefix>XXXXXX`), removed afterwards
 * whatever happens. Beside, not in the temp folder: what is made there is renamed into place,
 * and a rename cannot cross filesystems (EXDEV when the run folder is on NFS or `/tmp` is a tmpfs);
 * a film's pieces also belong on the disk that will hold the film, not in a RAM-backed `/tmp`.
 */
export async function withWorkDir<T>(
  dest: string,
  prefix: string,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  hookExit();
  await removeDeadWorkDirs(dirname(dest), prefix);
  // The pid in the name lets a later run tell a dead process's folder from a live one's.
  const dir = await mkdtemp(join(dirname(dest), `.${prefix}${process.pid}-`)).catch(
    (error: unknown) => {
      throw mediaIoError(
        error,
        "unwritable",
        `cannot make a scratch folder beside ${basename(dest)}`,
      );
    },
  );
  liveDirs.add(dir);
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
    liveDirs.delete(dir);
  }
}

/**
 * Waits for every job, then throws the first failure (the first in time: the ones after it are
 * usually the cancellations it caused). With `Promise.all` the first failure returns while other
 * ffmpeg runs still write into a scratch folder being removed. `onFailure` runs at the first
 * failure, e.g. to abort the jobs still running.
 */
export async function settleAll<T>(jobs: Promise<T>[], onFailure?: () => void): Promise<T[]> {
  let first: { error: unknown } | undefined;
  const results = await Promise.allSettled(
    jobs.map((job) =>
      job.catch((error: unknown) => {
        if (!first) {
          first = { error };
          onFailure?.();
        }
        throw error;
      }),
    ),
  );
  if (first) throw first.error;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}
