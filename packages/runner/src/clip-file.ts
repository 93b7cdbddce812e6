import { createHash } from "node:crypto";
import { createReadStream, statSync } from "node:fs";
import { stat, unlink } from "node:fs/promises";
import { resolve, sep } from "node:path";
import pLimit from "p-limit";
import { DEFAULT_DOWNLOAD_IDLE_TIMEOUT_MS, downloadVideo } from "@hailuo/core";
import { probe } from "@hailuo/media";
import { HailuoError } from "@hailuo/shared";
import type { RunStore } from "@hailuo/store";
import { JournalStore, readJournal, type ClipFacts } from "./journal-store.js";
import { storeOf, type RunAt } from "./run-folder.js";
import type { PlanItem } from "./plan.js";
import { replayJournal } from "./run-state.js";

/** A downloaded file is not the clip that was asked for. */
export class VerifyError extends HailuoError {
  constructor(message: string) {
    super("verify", message, { retryable: true });
  }
}

/** The part of a request id a clip's file name keeps: its first eight letters and digits. */
export function requestIdPrefix(requestId: string): string {
  return requestId.replace(/[^A-Za-z0-9]/g, "").slice(0, 8);
}

/** The file name of a paid clip: unique per request, so no paid clip is ever overwritten. */
export function clipFileName(
  item: Pick<PlanItem, "sceneId" | "take" | "scene">,
  requestId: string,
): string {
  const take = item.scene.takes > 1 ? `-take${item.take}` : "";
  return `${item.sceneId}${take}-${requestIdPrefix(requestId)}.mp4`;
}

/** Joins a relative path under `root`, refusing anything that would land outside it. */
export function insideDir(root: string, rel: string): string {
  const base = resolve(root);
  const full = resolve(base, rel);
  if (full !== base && !full.startsWith(base + sep))
    throw new HailuoError("unsafe_path", `refusing to write outside ${root}: ${rel}`);
  return full;
}

/**
 * Clips whose sha256 this process has seen match the journal, by absolute path, with the size and
 * modification time they had then: the film does not hash them again (a run assembles the clips
 * it has just downloaded and hashed).
 */
const hashedThisSession = new Map<string, { size: number; mtimeMs: number; sha256: string }>();

function rememberHash(path: string, size: number, mtimeMs: number, sha256: string): void {
  hashedThisSession.set(resolve(path), { size, mtimeMs, sha256 });
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * True when the journaled clip is on disk, whole and unchanged: same size and modification time
 * as when it was saved, else (an older journal, a touched file) the same sha256.
 */
export async function clipIntact(runDir: string, clip: ClipFacts | undefined): Promise<boolean> {
  const quick = clipUnchanged(runDir, clip);
  return quick ?? (await sha256File(insideDir(runDir, clip!.file))) === clip!.sha256;
}

/**
 * A done clip still stands in the run's store as the journal recorded it: a folder's file checked
 * as `clipIntact` checks it; a bucket's object by its size and stored SHA-256 (no download).
 */
export async function storedClipIntact(
  store: RunStore,
  clip: ClipFacts | undefined,
): Promise<boolean> {
  if (!clip) return false;
  if (store.kind === "local") return clipIntact(store.dir, clip);
  const stored = await store.statArtifact(clip.file);
  return stored?.bytes === clip.bytes && stored.sha256 === clip.sha256;
}

/** How a clip the journal calls done stands on disk. */
export type ClipStanding =
  /** Size and time as saved (hash not read), or the hash read matches. */
  | "intact"
  | "missing"
  /** Another size than the clip saved: replaced or cut. */
  | "resized"
  /** Same size, other bytes: replaced by a clip of equal size, or rotted. */
  | "mismatch";

/** One clip's check: which generation it is, and how it stands. */
export interface ClipCheck {
  key: string;
  file: string;
  /** The paid request the clip came from (what `resume` downloads again). */
  requestId: string;
  standing: ClipStanding;
  /** Whether its bytes were hashed for this check (else its size and time vouched for it). */
  hashed: boolean;
}

/** Options of `checkClips`. */
export interface CheckClipsOptions {
  /**
   * `touched`: hash only clips whose size is right but time changed (resume's rule: cheap, blind
   * to bit rot that keeps both); `unverified`: hash every clip not hashed by this process since it
   * last changed (what a film needs); `all`: hash every clip. @default "touched"
   */
  hash?: "touched" | "unverified" | "all";
  /** Only these clip files (relative to the run folder). @default every clip the journal calls done */
  files?: readonly string[];
}

/**
 * Checks the clips a run's journal calls done against the files on disk: a clip is verified, not
 * trusted. Hashes run four at a time (sha256 reads ~1 GB/s; a 6 s clip is a few MB). A bucket
 * run's clips are checked by the size and SHA-256 the bucket keeps (nothing downloaded).
 */
export async function checkClips(at: RunAt, options: CheckClipsOptions = {}): Promise<ClipCheck[]> {
  const { hash = "touched" } = options;
  const store = storeOf(at);
  const runDir = store.dir;
  const states = replayJournal((await readJournal(store)).records);
  const wanted = options.files && new Set(options.files);
  const limit = pLimit(4);
  const checks: Promise<ClipCheck>[] = [];
  for (const s of states.values()) {
    const clip = s.phase === "done" ? s.clip : undefined;
    if (!clip || (wanted && !wanted.has(clip.file))) continue;
    const requestId =
      s.clips.find((c) => c.file === clip.file)?.requestId ?? s.outputRequestId ?? "";
    const path = insideDir(runDir, clip.file);
    const check = (standing: ClipStanding, hashed: boolean): ClipCheck => ({
      key: s.key,
      file: clip.file,
      requestId,
      standing,
      hashed,
    });
    if (store.kind !== "local") {
      checks.push(
        limit(async () => {
          const kept = await store.statArtifact(clip.file);
          if (!kept) return check("missing", false);
          if (kept.bytes !== clip.bytes) return check("resized", false);
          return check(kept.sha256 === clip.sha256 ? "intact" : "mismatch", true);
        }),
      );
      continue;
    }
    checks.push(
      limit(async () => {
        const info = await stat(path).catch(() => undefined);
        if (!info) return check("missing", false);
        if (info.size !== clip.bytes) return check("resized", false);
        const same = clip.mtimeMs !== undefined && info.mtimeMs === clip.mtimeMs;
        const seen = hashedThisSession.get(path);
        const seenNow =
          seen?.size === info.size && seen.mtimeMs === info.mtimeMs && seen.sha256 === clip.sha256;
        if ((hash === "touched" && same) || (hash === "unverified" && seenNow))
          return check("intact", false);
        const sha256 = await sha256File(path);
        if (sha256 !== clip.sha256) return check("mismatch", true);
        rememberHash(path, info.size, info.mtimeMs, sha256);
        return check("intact", true);
      }),
    );
  }
  return Promise.all(checks);
}

/** What a changed clip is, in words: "missing", "cut or replaced (another size)", "replaced or corrupted (sha256 differs)". */
export function describeStanding(standing: Exclude<ClipStanding, "intact">): string {
  return {
    missing: "missing",
    resized: "replaced or cut (another size than downloaded)",
    mismatch: "replaced or corrupted (sha256 differs from the download)",
  }[standing];
}

/**
 * Journals each changed clip as paid-not-saved (`save_failed`, code `clip_changed`), so `resume`
 * downloads it again from its paid URL, never submits it again, even when its size and time
 * survived (bit rot) and resume's stat alone would call it cached. Not while a run holds the
 * folder (its journal is its own then); says whether it recorded.
 */
export async function recordChangedClips(
  at: RunAt,
  changed: readonly ClipCheck[],
): Promise<boolean> {
  const store = storeOf(at);
  if (!changed.length || (await store.owned())) return false;
  const journal = await JournalStore.on(store);
  try {
    for (const c of changed) {
      if (c.standing === "intact") continue;
      await journal.append({
        t: "save_failed",
        key: c.key,
        requestId: c.requestId,
        code: "clip_changed",
        message: `${c.file} is ${describeStanding(c.standing)}`,
      });
    }
  } finally {
    await journal.close();
  }
  return true;
}

/**
 * The cheap part of `clipIntact`, one synchronous stat (a resume checks thousands at once, and
 * a promise per file costs more than the stat): true unchanged, false missing or resized,
 * undefined when only its hash can tell.
 */
export function clipUnchanged(runDir: string, clip: ClipFacts | undefined): boolean | undefined {
  if (!clip) return false;
  const info = statSync(insideDir(runDir, clip.file), { throwIfNoEntry: false });
  if (!info || info.size !== clip.bytes) return false;
  return clip.mtimeMs !== undefined && info.mtimeMs === clip.mtimeMs ? true : undefined;
}

/**
 * The error that stops a film for clips changed since their download, naming each (`names`: a
 * label per file, e.g. "s2 take 1") and journaling them so `hailuo resume` downloads them again.
 */
export async function clipsChangedError(
  runDir: string,
  changed: readonly ClipCheck[],
  names: ReadonlyMap<string, string> = new Map(),
): Promise<HailuoError> {
  await recordChangedClips(runDir, changed);
  const lines = changed.map(
    (c) =>
      `  ${names.get(c.file) ?? c.key}: ${c.file} is ${describeStanding(c.standing as Exclude<ClipStanding, "intact">)}`,
  );
  return new HailuoError(
    "clip_changed",
    `${changed.length === 1 ? "a clip no longer matches" : `${changed.length} clips no longer match`} the download the journal recorded, so the film was not made:\n${lines.join("\n")}\n` +
      `run \`hailuo resume ${runDir}\` to download ${changed.length === 1 ? "it" : "them"} again from the paid request (nothing is submitted or paid again)`,
    { retryable: false, details: { files: changed.map((c) => c.file) } },
  );
}

/** Checks that a downloaded file is a plausible clip of the asked length. */
async function verifyClip(
  path: string,
  expectedS: number,
): Promise<Pick<ClipFacts, "durationS" | "width" | "height" | "video">> {
  const info = await probe(path).catch((error: HailuoError) => {
    // No ffprobe is our side's fault, not the clip's: it must stop the run, not condemn the clip.
    if (error.code === "ffmpeg_missing") throw error;
    throw new VerifyError(`downloaded file ${path} is not a readable video: ${error.message}`);
  });
  if (info.width <= 0 || info.height <= 0)
    throw new VerifyError(`clip ${path} has no picture size (${info.width}x${info.height})`);
  if (info.durationS < expectedS - 0.75 || info.durationS > expectedS + 2) {
    throw new VerifyError(
      `clip ${path} lasts ${info.durationS.toFixed(2)} s; ${expectedS} s were asked for`,
    );
  }
  // Probed once, here: the media stage reads these facts from the journal instead of probing again.
  return { durationS: info.durationS, width: info.width, height: info.height, video: info };
}

/**
 * How long a clip download may go without a byte: `HAILUO_DOWNLOAD_IDLE_S` seconds (for slow or
 * far links), else the core's 60 s. A stall fails as `download_stalled`, which the item retries
 * as a download of the same paid URL.
 */
export function downloadIdleTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const s = Number(env.HAILUO_DOWNLOAD_IDLE_S);
  return env.HAILUO_DOWNLOAD_IDLE_S && Number.isFinite(s) && s > 0
    ? s * 1000
    : DEFAULT_DOWNLOAD_IDLE_TIMEOUT_MS;
}

/**
 * Downloads a paid clip from its fal URL into the run folder and verifies it (`verifyClip`: an
 * MP4 whose samples run past its end is torn, even when fal gave no size to compare); a file that
 * fails verification is removed (the paid source is still at the URL).
 */
export async function saveClip(
  runDir: string,
  item: PlanItem,
  requestId: string,
  videoUrl: string,
  fileSize: number | undefined,
  signal: AbortSignal,
): Promise<ClipFacts> {
  const rel = `clips/${clipFileName(item, requestId)}`;
  const path = insideDir(runDir, rel);
  const dl = await downloadVideo(videoUrl, path, {
    expectedBytes: fileSize,
    signal,
    idleTimeoutMs: downloadIdleTimeoutMs(),
  });
  try {
    const facts = await verifyClip(path, Number(item.input.duration));
    const { mtimeMs } = await stat(path);
    rememberHash(path, dl.bytes, mtimeMs, dl.sha256);
    return { file: rel, bytes: dl.bytes, sha256: dl.sha256, mtimeMs, ...facts };
  } catch (error) {
    await unlink(path).catch(() => {});
    throw error;
  }
}

/**
 * The facts of a clip already in the folder that the journal does not know (its records were
 * lost), checked as a download is: a readable video of the asked length; hashed as it stands.
 */
export async function clipFactsOf(runDir: string, item: PlanItem, rel: string): Promise<ClipFacts> {
  const path = insideDir(runDir, rel);
  const facts = await verifyClip(path, Number(item.input.duration));
  const [sha256, { size, mtimeMs }] = await Promise.all([sha256File(path), stat(path)]);
  rememberHash(path, size, mtimeMs, sha256);
  return { file: rel, bytes: size, sha256, mtimeMs, ...facts };
}
