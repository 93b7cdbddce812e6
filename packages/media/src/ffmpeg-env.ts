import { execFile } from "node:child_process";
import { readFile, realpath, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { delimiter, isAbsolute, join } from "node:path";
import { promisify } from "node:util";
import type Fluent from "fluent-ffmpeg";
import { HailuoError, atomicWrite } from "@hailuo/shared";

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

const INSTALL_HINT =
  "install it with `sudo apt-get install -y ffmpeg` (or set FFMPEG_PATH and FFPROBE_PATH)";
/** Oldest ffmpeg major version we support (xfade, gradients and drawtext textfile behave as we expect from 5 on). */
export const MIN_FFMPEG_MAJOR = 5;

let fluentModule: typeof Fluent | undefined;

/**
 * fluent-ffmpeg, loaded on first use (a CommonJS module, so a plain require): a run that has no
 * clip to save, `status` and `resume` of a finished folder start without its fifteen files.
 */
export function fluent(): typeof Fluent {
  return (fluentModule ??= createRequire(import.meta.url)("fluent-ffmpeg") as typeof Fluent);
}

type Found = { ffmpeg: string; ffprobe: string; version: string };
// Keyed by the two paths: a process whose FFMPEG_PATH changes checks the new tools.
const checked = new Map<string, Promise<Found>>();
const warmed = new Map<string, Promise<Found>>();
const pathsKey = () =>
  `${process.env.FFMPEG_PATH || "ffmpeg"}\0${process.env.FFPROBE_PATH || "ffprobe"}`;

/** `make()` once per key, forgotten when it fails so a later call tries again. */
function remembered(
  cache: Map<string, Promise<Found>>,
  make: () => Promise<Found>,
): Promise<Found> {
  const key = pathsKey();
  let found = cache.get(key);
  if (!found) {
    found = make();
    cache.set(key, found);
    found.catch(() => cache.delete(key));
  }
  return found;
}

/** Points fluent-ffmpeg at ffmpeg and ffprobe (PATH, or FFMPEG_PATH / FFPROBE_PATH) without running them. */
export function ffmpegPaths(): { ffmpeg: string; ffprobe: string } {
  const paths = {
    ffmpeg: process.env.FFMPEG_PATH || "ffmpeg",
    ffprobe: process.env.FFPROBE_PATH || "ffprobe",
  };
  fluent().setFfmpegPath(paths.ffmpeg);
  fluent().setFfprobePath(paths.ffprobe);
  return paths;
}

/** The error for a tool that is not there, with the install hint. */
export function missingTool(path: string): FfmpegMissingError {
  return new FfmpegMissingError(`${path} not found: ${INSTALL_HINT}`);
}

/**
 * Checks once per process (and pair of paths) that ffmpeg and ffprobe run and are new enough
 * (two `-version` runs, side by side): what a run needs before it spends anything. Throws
 * FfmpegMissingError with an install hint.
 */
export function checkFfmpeg(): Promise<Found> {
  return remembered(checked, async () => {
    const { ffmpeg: ffmpegPath, ffprobe: ffprobePath } = ffmpegPaths();
    const identity = await toolsIdentity(ffmpegPath, ffprobePath);
    const known = identity ? (await readChecks())[identity] : undefined;
    if (known) return { ffmpeg: ffmpegPath, ffprobe: ffprobePath, version: known };
    const run = promisify(execFile);
    let version = "";
    try {
      const [{ stdout }] = await Promise.all([
        run(ffmpegPath, ["-hide_banner", "-version"]),
        run(ffprobePath, ["-hide_banner", "-version"]),
      ]);
      version = /version\s+n?(\S+)/.exec(stdout)?.[1] ?? "unknown";
    } catch {
      throw new FfmpegMissingError(
        `ffmpeg/ffprobe not found (${ffmpegPath}, ${ffprobePath}): ${INSTALL_HINT}`,
      );
    }
    const major = Number(/^(\d+)/.exec(version)?.[1]);
    if (Number.isFinite(major) && major < MIN_FFMPEG_MAJOR) {
      throw new FfmpegMissingError(
        `ffmpeg ${version} is too old (need ${MIN_FFMPEG_MAJOR} or newer): ${INSTALL_HINT}`,
      );
    }
    if (identity) await rememberCheck(identity, version).catch(() => {});
    return { ffmpeg: ffmpegPath, ffprobe: ffprobePath, version };
  });
}

// The two `-version` runs cost each command ~0.3 s of CPU (ffmpeg loads some 200 libraries to
// start), so a passed check is kept on disk for this user, keyed by both binaries' identity: a
// binary replaced or upgraded has another inode, size or time and is checked again.
const CHECKS = join(tmpdir(), `hailuo-ffmpeg-checked-${process.getuid?.() ?? "user"}.json`);

/** `path:inode:size:mtime` of both tools as PATH (or their env paths) finds them now. */
async function toolsIdentity(...tools: string[]): Promise<string | undefined> {
  const ids: string[] = [];
  for (const tool of tools) {
    const candidates = tool.includes("/")
      ? [tool]
      : (process.env.PATH ?? "")
          .split(delimiter)
          .flatMap((d) => (isAbsolute(d) ? [join(d, tool)] : []));
    let found: string | undefined;
    for (const c of candidates) {
      const real = await realpath(c).catch(() => undefined);
      const st = real ? await stat(real).catch(() => undefined) : undefined;
      if (st?.isFile()) {
        found = `${real}:${st.ino}:${st.size}:${st.mtimeMs}`;
        break;
      }
    }
    if (!found) return undefined;
    ids.push(found);
  }
  return ids.join("|");
}

/** Checks passed before, by identity; only a file of this user's counts. */
async function readChecks(): Promise<Record<string, string>> {
  const st = await stat(CHECKS).catch(() => undefined);
  if (!st?.isFile() || (process.getuid && st.uid !== process.getuid())) return {};
  try {
    const parsed: unknown = JSON.parse(await readFile(CHECKS, "utf8"));
    return parsed && typeof parsed === "object" ? (parsed as Record<string, string>) : {};
  } catch {
    return {};
  }
}

async function rememberCheck(identity: string, version: string): Promise<void> {
  // A few pairs at most (tests point FFMPEG_PATH at others): the newest kept.
  const kept = Object.entries(await readChecks())
    .filter(([id]) => id !== identity)
    .slice(-7);
  await atomicWrite(CHECKS, JSON.stringify(Object.fromEntries([...kept, [identity, version]])));
}

/**
 * `checkFfmpeg`, and fluent-ffmpeg made ready for its first job: it asks `ffmpeg -formats` and
 * `ffmpeg -encoders` once per process before one, fetched here alongside the version checks
 * instead of one after the other in front of it. For the media stage; a run only needs the check.
 */
export function ensureFfmpeg(): Promise<Found> {
  return remembered(warmed, async () => {
    ffmpegPaths();
    const formats = new Promise<void>((done) => fluent().getAvailableFormats(() => done()));
    const encoders = new Promise<void>((done) => fluent().getAvailableEncoders(() => done()));
    const [found] = await Promise.all([checkFfmpeg(), formats, encoders]);
    return found;
  });
}
