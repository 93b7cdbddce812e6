import { createHash, randomBytes } from "node:crypto";
import { open, rename, unlink, mkdir, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Readable } from "node:stream";
import { HailuoError, abortError, syncDir } from "@hailuo/shared";
import { DownloadError } from "./hailuo-errors.js";

/** How long a download may go without a byte before it is given up as stalled. */
export const DEFAULT_DOWNLOAD_IDLE_TIMEOUT_MS = 60_000;

/**
 * A download sent nothing for `idleTimeoutMs` (headers or body): retryable, since the paid clip is
 * still at its URL; the runner downloads it again and never submits anew for it.
 */
export class DownloadStalledError extends HailuoError {
  constructor(url: string, bytes: number, idleTimeoutMs: number) {
    super(
      "download_stalled",
      `download of ${url} stalled: nothing received for ${idleTimeoutMs / 1000} s after ${bytes} bytes`,
      { retryable: true, details: { bytes, idleTimeoutMs } },
    );
  }
}

/** Options of `downloadVideo`. */
export interface DownloadOptions {
  /** Size fal announced (`video.file_size`); checked against the bytes received. */
  expectedBytes?: number;
  signal?: AbortSignal;
  /**
   * Longest wait for the answer or the next bytes of the body; then `DownloadStalledError`. Without
   * it a stalled body would hold the download for the HTTP client's own 5 minutes.
   * @default DEFAULT_DOWNLOAD_IDLE_TIMEOUT_MS (60 s)
   */
  idleTimeoutMs?: number;
  /** @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
  /**
   * Writes one buffer at a file position and says how many bytes the OS took. Injectable so a
   * test can produce the short writes a nearly full disk gives. @default FileHandle.write
   */
  write?: (file: FileHandle, buf: Buffer, position: number) => Promise<number>;
}

/** What landed on disk. */
export interface DownloadResult {
  path: string;
  bytes: number;
  sha256: string;
}

/** The local disk could not take the file (full, read-only, no permission): not fal's fault, and not retryable in place. */
export class LocalWriteError extends HailuoError {
  constructor(path: string, error: NodeJS.ErrnoException) {
    const full = error.code === "ENOSPC" || error.code === "EDQUOT";
    super(
      full ? "disk_full" : "unwritable",
      `${full ? "no space left on the device" : "cannot write"} for ${path} (${error.code ?? error.message})`,
      { cause: error, retryable: false, details: { path } },
    );
  }
}

const LOCAL_WRITE_CODES = new Set(["ENOSPC", "EDQUOT", "EACCES", "EPERM", "EROFS"]);

/** Turns a file-system error into a LocalWriteError naming the path, or undefined. */
export function localWriteError(path: string, error: unknown): LocalWriteError | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code && LOCAL_WRITE_CODES.has(code)
    ? new LocalWriteError(path, error as NodeJS.ErrnoException)
    : undefined;
}

const defaultWrite = async (file: FileHandle, buf: Buffer, position: number) =>
  (await file.write(buf, 0, buf.length, position)).bytesWritten;

/**
 * Streams `url` into a temp file beside `path`, checks every write took all its bytes (a nearly
 * full disk writes short), the byte count against Content-Length and `expectedBytes`, and the
 * file's size on disk; fsyncs, then renames atomically: `path` holds the whole file or nothing.
 * A transfer that goes `idleTimeoutMs` without a byte fails with `DownloadStalledError`.
 */
export async function downloadVideo(
  url: string,
  path: string,
  options: DownloadOptions = {},
): Promise<DownloadResult> {
  const { signal, expectedBytes, write = defaultWrite } = options;
  const fetchFn = options.fetch ?? globalThis.fetch;
  if (signal?.aborted) throw abortError(signal);
  await mkdir(dirname(path), { recursive: true }).catch((e: unknown) => {
    throw localWriteError(dirname(path), e) ?? e;
  });
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString("hex")}.part`);
  const idleMs = options.idleTimeoutMs ?? DEFAULT_DOWNLOAD_IDLE_TIMEOUT_MS;
  // Our own deadline, reset by every chunk: it aborts the transfer, and `stalled` tells that abort from the caller's.
  const idle = new AbortController();
  let stalled = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      idle.abort();
    }, idleMs);
  };
  const transfer = signal ? AbortSignal.any([signal, idle.signal]) : idle.signal;
  let bytes = 0;
  const stalledError = () => new DownloadStalledError(url, bytes, idleMs);
  let res: Response;
  arm();
  try {
    res = await fetchFn(url, { signal: transfer });
  } catch (error) {
    clearTimeout(timer);
    if (signal?.aborted) throw abortError(signal);
    if (stalled) throw stalledError();
    throw new DownloadError(`could not download ${url}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!res.ok || !res.body) {
    clearTimeout(timer);
    await res.body?.cancel().catch(() => {});
    throw new DownloadError(`download of ${url} failed with HTTP ${res.status}`, {
      retryable: res.status >= 500 || res.status === 429,
    });
  }
  const announced = res.headers.get("content-length");
  const hash = createHash("sha256");
  let file: FileHandle | undefined;
  try {
    file = await open(tmp, "w");
    for await (const chunk of Readable.fromWeb(
      res.body as import("node:stream/web").ReadableStream<Uint8Array>,
    )) {
      // The clock runs while we wait for the network only, not while a slow disk takes the chunk.
      clearTimeout(timer);
      const buf = chunk as Buffer;
      hash.update(buf);
      // write(2) may take fewer bytes than asked (a disk filling up): write the rest, and let
      // the next call fail with ENOSPC rather than keep a silently truncated file.
      for (let off = 0; off < buf.length;) {
        const n = await write(file, buf.subarray(off), bytes + off);
        if (n <= 0) throw new DownloadError(`writing ${tmp} stalled at ${bytes + off} bytes`);
        off += n;
      }
      bytes += buf.length;
      arm();
    }
    clearTimeout(timer);
    if (announced !== null && Number(announced) !== bytes) {
      throw new DownloadError(`download of ${url} was cut short: ${bytes} of ${announced} bytes`);
    }
    if (expectedBytes !== undefined && expectedBytes !== bytes) {
      throw new DownloadError(
        `download of ${url} has ${bytes} bytes; fal announced ${expectedBytes}`,
      );
    }
    await file.sync();
    const onDisk = (await file.stat()).size;
    if (onDisk !== bytes)
      throw new DownloadError(`${tmp} holds ${onDisk} bytes after writing ${bytes}`, {
        retryable: false,
      });
    await file.close();
    file = undefined;
    await rename(tmp, path);
    await syncDir(dirname(path));
    return { path, bytes, sha256: hash.digest("hex") };
  } catch (error) {
    clearTimeout(timer);
    await file?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    if (signal?.aborted) throw abortError(signal);
    if (stalled) throw stalledError();
    if (error instanceof HailuoError) throw error;
    const local = localWriteError(path, error);
    if (local) throw local;
    throw new DownloadError(`download of ${url} to ${path} failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
