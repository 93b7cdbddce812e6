import { createHash, randomBytes } from "node:crypto";
import { open, rename, unlink, mkdir } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Readable } from "node:stream";
import { abortError } from "@hailuo/shared";
import { DownloadError } from "./hailuo-errors.js";

/** Options of `downloadVideo`. */
export interface DownloadOptions {
  /** Size fal announced (`video.file_size`); checked against the bytes received. */
  expectedBytes?: number;
  signal?: AbortSignal;
  /** @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
}

/** What landed on disk. */
export interface DownloadResult {
  path: string;
  bytes: number;
  sha256: string;
}

/**
 * Streams `url` into a temp file beside `path`, checks the byte count against Content-Length and
 * `expectedBytes`, fsyncs, then renames atomically: `path` either holds the whole file or nothing.
 */
export async function downloadVideo(url: string, path: string, options: DownloadOptions = {}): Promise<DownloadResult> {
  const { signal, expectedBytes } = options;
  const fetchFn = options.fetch ?? globalThis.fetch;
  if (signal?.aborted) throw abortError(signal);
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString("hex")}.part`);
  let res: Response;
  try {
    res = await fetchFn(url, { signal });
  } catch (error) {
    if (signal?.aborted) throw abortError(signal);
    throw new DownloadError(`could not download ${url}: ${(error as Error).message}`, { cause: error });
  }
  if (!res.ok || !res.body) {
    throw new DownloadError(`download of ${url} failed with HTTP ${res.status}`, { retryable: res.status >= 500 || res.status === 429 });
  }
  const announced = res.headers.get("content-length");
  const hash = createHash("sha256");
  let bytes = 0;
  const file = await open(tmp, "w");
  try {
    for await (const chunk of Readable.fromWeb(res.body as import("node:stream/web").ReadableStream<Uint8Array>)) {
      const buf = chunk as Buffer;
      hash.update(buf);
      bytes += buf.length;
      await file.write(buf);
    }
    if (announced !== null && Number(announced) !== bytes) {
      throw new DownloadError(`download of ${url} was cut short: ${bytes} of ${announced} bytes`);
    }
    if (expectedBytes !== undefined && expectedBytes !== bytes) {
      throw new DownloadError(`download of ${url} has ${bytes} bytes; fal announced ${expectedBytes}`);
    }
    await file.sync();
    await file.close();
    await rename(tmp, path);
    await syncDir(dirname(path));
    return { path, bytes, sha256: hash.digest("hex") };
  } catch (error) {
    await file.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    if (signal?.aborted) throw abortError(signal);
    if (error instanceof DownloadError) throw error;
    throw new DownloadError(`download of ${url} failed: ${(error as Error).message}`, { cause: error });
  }
}

/** Makes a rename durable: the directory entry itself must reach the disk. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r").catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic there.
  } finally {
    await handle.close();
  }
}
