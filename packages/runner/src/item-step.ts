import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat, unlink } from "node:fs/promises";
import { resolve, sep } from "node:path";
import { downloadVideo, resultForStatus, type HailuoClient, type HailuoHandle, type HailuoStatus } from "@hailuo/core";
import { probe } from "@hailuo/media";
import { HailuoError, backoffDelayMs, redactSecrets, systemClock, type Clock } from "@hailuo/shared";
import type { ItemPhase, RunEvent } from "./events.js";
import type { ClipFacts, JournalStore } from "./journal-store.js";
import type { PlanItem } from "./plan.js";
import type { ItemState } from "./run-state.js";

/** The run would cost more than its budget allows. */
export class BudgetError extends HailuoError {
  constructor(message: string) {
    super("budget", message, { retryable: false });
  }
}

/** A downloaded file is not the clip that was asked for. */
export class VerifyError extends HailuoError {
  constructor(message: string) {
    super("verify", message, { retryable: true });
  }
}

/** How one generation ended in this process. */
export type ItemOutcome = "done" | "cached" | "failed" | "interrupted";

/** Everything one item step needs; the local runner and the queue worker both provide it. */
export interface ItemContext {
  runDir: string;
  client: HailuoClient;
  journal: JournalStore;
  /** What the journal says about this item (updated in place). */
  state: ItemState;
  /** The clip on disk is whole and unchanged: nothing to do. */
  intact: boolean;
  signal: AbortSignal;
  emit: (event: RunEvent) => void;
  /** Retries after the first attempt. @default 3 */
  retries?: number;
  /** @default 900000 */
  itemTimeoutMs?: number;
  waitMode?: "stream" | "poll";
  /** @default 1000 */
  retryBaseDelayMs?: number;
  /** @default 30000 */
  retryMaxDelayMs?: number;
  /** Reuse clips of identical inputs. @default true */
  cache?: boolean;
  clock?: Clock;
  /** Asked before every submit; false means the budget has no room for it. */
  reserve?: (usd: number) => boolean;
  /** Gives back a reservation whose submit created nothing billable. */
  release?: (usd: number) => void;
  /** Tells the caller which request is in flight (for cancel-on-exit); undefined when none. */
  onLive?: (entry: { handle: HailuoHandle; state?: HailuoStatus["state"] } | undefined) => void;
  /** Bad credentials: every other item would fail too. */
  onAuthFailure?: (error: HailuoError) => void;
}

/** A fresh state for an item the journal has never seen. */
export function newItemState(key: string): ItemState {
  return { key, phase: "new", submits: 0, ambiguousSubmits: 0, attempts: 0, requestIds: [], clips: [], live: false };
}

/** Validation and content-policy failures repeat for the same input: only an edit (a new key) retries them. */
export function isFinalFailure(s: ItemState | undefined): boolean {
  return s?.phase === "failed" && !s.live && (s.error?.code === "content_policy" || s.error?.code === "validation");
}

/** The file name of a paid clip: unique per request, so no paid clip is ever overwritten. */
export function clipFileName(item: Pick<PlanItem, "sceneId" | "take" | "scene">, requestId: string): string {
  const take = item.scene.takes > 1 ? `-take${item.take}` : "";
  return `${item.sceneId}${take}-${requestId.replace(/[^A-Za-z0-9]/g, "").slice(0, 8)}.mp4`;
}

/** Joins a relative path under `root`, refusing anything that would land outside it. */
export function insideDir(root: string, rel: string): string {
  const full = resolve(root, rel);
  if (full !== resolve(root) && !full.startsWith(resolve(root) + sep)) throw new HailuoError("unsafe_path", `refusing to write outside ${root}: ${rel}`);
  return full;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** True when the journaled clip is on disk, whole and unchanged. */
export async function clipIntact(runDir: string, clip: ClipFacts | undefined): Promise<boolean> {
  if (!clip) return false;
  const path = insideDir(runDir, clip.file);
  const info = await stat(path).catch(() => undefined);
  return Boolean(info && info.size === clip.bytes && (await sha256File(path)) === clip.sha256);
}

/** Checks that a downloaded file is a plausible clip of the asked length. */
async function verifyClip(path: string, expectedS: number): Promise<{ durationS: number; width: number; height: number }> {
  const info = await probe(path).catch((error: Error) => {
    throw new VerifyError(`downloaded file is not a readable video: ${error.message}`);
  });
  if (info.width <= 0 || info.height <= 0) throw new VerifyError(`clip has no picture size (${info.width}x${info.height})`);
  if (info.durationS < expectedS - 0.75 || info.durationS > expectedS + 2) {
    throw new VerifyError(`clip lasts ${info.durationS.toFixed(2)} s; ${expectedS} s were asked for`);
  }
  return { durationS: info.durationS, width: info.width, height: info.height };
}

/**
 * One generation, from wherever the journal left it to a verified clip on disk: re-attach to a
 * live request, download a completed one, or submit (journaled before and after). Retries by
 * stage: a failed wait or result fetch retries the same request, only a failed generation or a
 * refused submit submits again. Never throws for the item's own failures; says how it ended.
 */
export async function processItem(item: PlanItem, ctx: ItemContext): Promise<ItemOutcome> {
  const { runDir, client, journal, signal, state: s, retries = 3, itemTimeoutMs = 900_000, cache = true, clock = systemClock } = ctx;
  const say = (phase: ItemPhase, extra: Partial<Extract<RunEvent, { type: "item" }>> = {}) =>
    ctx.emit({ type: "item", key: item.key, sceneId: item.sceneId, take: item.take, phase, ...extra });
  if (ctx.intact) {
    say("cached", { requestId: s.clips.at(-1)?.requestId });
    return "cached";
  }
  if (isFinalFailure(s)) {
    say("failed", { detail: `${s.error?.code}: ${s.error?.message} (not retried for the same input; edit the scene to try again)` });
    return "failed";
  }
  // Where to pick up: a live request is re-attached, a completed one only downloaded again.
  let handle = s.live ? s.handle : undefined;
  let videoUrl = s.phase === "completed" || (s.phase === "done" && cache) ? s.videoUrl : undefined;
  let fileSize = videoUrl ? s.fileSize : undefined;
  let requestId = handle?.requestId ?? s.requestIds.at(-1);
  if (s.phase === "done" && cache && videoUrl) {
    ctx.emit({ type: "warning", message: `${item.sceneId}: clip ${s.clip?.file} is missing or corrupt; downloading the paid clip again` });
  }
  let tries = 0;
  let stage = "submit";
  for (;;) {
    if (signal.aborted) {
      say("interrupted");
      return "interrupted";
    }
    try {
      if (!videoUrl) {
        if (!handle) {
          stage = "submit";
          if (ctx.reserve && !ctx.reserve(item.costUsd)) throw new BudgetError("budget reached (spent and in flight); not submitted");
          say("submitting");
          await journal.append({ t: "submitting", key: item.key, scene: item.sceneId, take: item.take, attempt: s.attempts + 1 });
          s.attempts++;
          try {
            handle = await client.submit(item.input, { signal });
          } catch (error) {
            const e = error as HailuoError;
            if (e.code === "submit_ambiguous") {
              // Maybe billed: it stays reserved against the budget and shows in the report.
              s.ambiguousSubmits++;
              await journal.append({ t: "ambiguous", key: item.key, message: e.message });
            } else ctx.release?.(item.costUsd);
            throw error;
          }
          await journal.append({ t: "submitted", key: item.key, handle });
          s.requestIds.push(handle.requestId);
          requestId = handle.requestId;
        } else if (s.live) say("queued", { requestId: handle.requestId, detail: "re-attached" });
        const h: HailuoHandle = handle;
        const entry: { handle: HailuoHandle; state?: HailuoStatus["state"] } = { handle: h };
        ctx.onLive?.(entry);
        stage = "wait";
        const status = await client.wait(h, {
          signal,
          timeoutMs: itemTimeoutMs,
          mode: ctx.waitMode,
          onUpdate: (st) => {
            entry.state = st.state;
            if (st.state === "queued") say("queued", { requestId: h.requestId, queuePosition: st.queuePosition });
            else if (st.state === "in_progress") say("in_progress", { requestId: h.requestId, detail: st.logs.at(-1)?.message });
          },
        });
        stage = "result";
        const output = await resultForStatus(client, h, status, signal);
        ctx.onLive?.(undefined);
        videoUrl = output.video.url;
        fileSize = output.video.file_size || undefined;
        s.live = false;
        await journal.append({ t: "completed", key: item.key, requestId: h.requestId, videoUrl, fileSize });
      }
      stage = "download";
      say("downloading", { requestId });
      const rel = `clips/${clipFileName(item, requestId ?? "unknown")}`;
      const path = insideDir(runDir, rel);
      const dl = await downloadVideo(videoUrl, path, { expectedBytes: fileSize, signal });
      stage = "verify";
      say("verifying", { requestId });
      let facts: { durationS: number; width: number; height: number };
      try {
        facts = await verifyClip(path, Number(item.input.duration));
      } catch (error) {
        // Keep nothing unverified under the clip's name; the paid source is still at videoUrl.
        await unlink(path).catch(() => {});
        throw error;
      }
      const clip: ClipFacts = { file: rel, bytes: dl.bytes, sha256: dl.sha256, ...facts };
      await journal.append({ t: "done", key: item.key, requestId: requestId ?? "", ...clip });
      s.phase = "done";
      s.clip = clip;
      s.clips.push({ ...clip, requestId: requestId ?? "" });
      say("done", { requestId, detail: rel });
      return "done";
    } catch (error) {
      const e = error instanceof HailuoError ? error : new HailuoError("internal", redactSecrets(String((error as Error)?.message ?? error)), { cause: error });
      if (signal.aborted) {
        say("interrupted", { requestId });
        return "interrupted";
      }
      if (e.code === "generation_failed") {
        // The request is over and fal does not bill failures: a new submit is a new attempt.
        ctx.release?.(item.costUsd);
        handle = undefined;
        ctx.onLive?.(undefined);
      }
      if (e.code === "submit_ambiguous") handle = undefined;
      const fail = async (): Promise<ItemOutcome> => {
        s.error = { code: e.code, message: e.message, retryable: e.retryable };
        // A timed-out wait leaves the request running on fal: resume re-attaches, never resubmits.
        await journal.append({ t: "failed", key: item.key, code: e.code, message: e.message, retryable: e.retryable, requestId, live: Boolean(handle) && !videoUrl });
        say("failed", { requestId, detail: `${e.code}: ${e.message}` });
        return "failed";
      };
      if (e.code === "auth") {
        const outcome = await fail();
        ctx.onAuthFailure?.(e);
        return outcome;
      }
      if (!e.retryable || e.code === "timeout" || e.code === "budget" || tries >= retries) return fail();
      tries++;
      const delayMs = backoffDelayMs(tries - 1, e, { baseDelayMs: ctx.retryBaseDelayMs ?? 1000, maxDelayMs: ctx.retryMaxDelayMs ?? 30_000 });
      const retryStage = e.code === "generation_failed" ? "generate" : stage;
      await journal.append({ t: "retry", key: item.key, attempt: s.attempts, code: e.code, message: e.message, delayMs, stage: retryStage });
      say("retrying", { requestId, detail: `${e.code} during ${stage}; retry ${tries}/${retries} in ${(delayMs / 1000).toFixed(1)} s` });
      try {
        await clock.sleep(delayMs, signal);
      } catch {
        say("interrupted", { requestId });
        return "interrupted";
      }
    }
  }
}
