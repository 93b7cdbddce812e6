import { constants, type Stats } from "node:fs";
import { open, readlink, realpath, type FileHandle } from "node:fs/promises";
import { resolve, sep } from "node:path";

/** A regular file of the run folder, open and ready to stream. */
export interface OpenRunFile {
  handle: FileHandle;
  info: Stats;
}

/**
 * The path a page request names under `/files/`, as a list of plain names, or undefined when any
 * part is empty, `.` or `..` (written plainly or as `%2e%2e`), holds a slash, a backslash or NUL
 * once decoded, or is not valid percent-encoding. Pure: the caller opens the result.
 */
export function filePathOf(urlPath: string): string[] | undefined {
  const parts = urlPath.split("/");
  const names: string[] = [];
  for (const part of parts) {
    let name: string;
    try {
      name = decodeURIComponent(part);
    } catch {
      return undefined;
    }
    if (name === "" || name === "." || name === ".." || /[/\\\0]/.test(name)) return undefined;
    names.push(name);
  }
  return names.length ? names : undefined;
}

// The descriptor itself says which file it holds, where the platform tells (Linux).
async function descriptorPath(handle: FileHandle): Promise<string | undefined> {
  return readlink(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
}

const inside = (rootReal: string, path: string) => path.startsWith(rootReal + sep);

/**
 * Opens a file of the run folder for reading, or undefined. Its real path (every link followed)
 * must lie inside the folder's real path, so a `thumbs/` that links to /etc serves nothing; only
 * regular files open (a FIFO would hang a read, a device never ends). `rootReal` is the folder's
 * `realpath`.
 */
export async function openRunFile(
  rootReal: string,
  names: string[],
): Promise<OpenRunFile | undefined> {
  const real = await realpath(resolve(rootReal, ...names)).catch(() => undefined);
  if (!real || !inside(rootReal, real)) return undefined;
  // No following a link swapped in since the check; non-blocking so opening a FIFO returns at once.
  const flags = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
  const handle = await open(real, flags).catch(() => undefined);
  if (!handle) return undefined;
  try {
    const info = await handle.stat();
    // A folder on the way swapped for a link between realpath and open would show here.
    const held = await descriptorPath(handle);
    if (info.isFile() && (held === undefined || inside(rootReal, held))) return { handle, info };
  } catch {
    // refused below
  }
  await handle.close();
  return undefined;
}

const TYPES: Record<string, string> = {
  mp4: "video/mp4",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  png: "image/png",
  gif: "image/gif",
  webp: "image/webp",
  vtt: "text/vtt; charset=utf-8",
  json: "application/json",
};

/** The content type the page's media need; anything else downloads as bytes. */
export function contentType(name: string): string {
  return TYPES[name.slice(name.lastIndexOf(".") + 1).toLowerCase()] ?? "application/octet-stream";
}

/**
 * The bytes a `Range` header asks for (one range: what browsers send for video), `"all"` with no
 * header or one we do not read, or undefined when it lies outside the file (416).
 */
export function byteRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | "all" | undefined {
  const m = header?.match(/^bytes=(\d*)-(\d*)$/);
  if (!m || (m[1] === "" && m[2] === "")) return "all";
  if (m[1] === "") {
    const suffix = Number(m[2]);
    return suffix > 0 && size > 0
      ? { start: Math.max(size - suffix, 0), end: size - 1 }
      : undefined;
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  return start < size && start <= end ? { start, end } : undefined;
}
