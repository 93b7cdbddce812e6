import { resultForStatus, type HailuoClient, type HailuoHandle, type HailuoStatus } from "@hailuo/core";
import { HailuoError, backoffDelayMs, redactSecrets, systemClock, type Clock } from "@hailuo/shared";
import { classifyFailure, type ItemStage } from "./classify.js";
import { saveClip } from "./clip-file.js";
import { findLostSubmits } from "./reconcile.js";
import type { ItemPhase, RunEvent } from "./events.js";
import type { JournalRecord, JournalStore } from "./journal-store.js";
import type { PlanItem } from "./plan.js";
import type { ItemState } from "./run-state.js";

/** The run would cost more than its budget allows. */
export class BudgetError extends HailuoError {
  constructor(message: string) {
    super("budget", message, { retryable: false });
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
  /** Stops new submits and waiting (the first Ctrl-C). */
  signal: AbortSignal;
  /** Aborts a submit already on the wire; later than `signal`, so its request id still reaches the journal. @default signal */
  submitSignal?: AbortSignal;
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
  /** A submit left (true) or came back (false): the caller waits for these on Ctrl-C. */
  onSubmitInFlight?: (inFlight: boolean) => void;
  /** Every other item would fail the same way (bad key, full disk, missing ffmpeg): stop the run. */
  onStopRun?: (error: HailuoError) => void;
  /** Every request id the run folder's journal knows (so a found request is surely not ours already). */
  knownRequestIds?: () => ReadonlySet<string>;
  /** False once fal's Platform API could not answer: lost submits are then flagged, not looked up. */
  platformAvailable?: () => boolean;
  /** fal's Platform API could not answer. */
  onPlatformUnavailable?: (error: HailuoError) => void;
}

/** A fresh state for an item the journal has never seen. */
export function newItemState(key: string): ItemState {
  return { key, phase: "new", submits: 0, ambiguousSubmits: 0, attempts: 0, requestIds: [], clips: [], live: false, unreconciled: [] };
}

/** Validation and content-policy failures repeat for the same input: only an edit (a new key) retries them. */
export function isFinalFailure(s: ItemState | undefined): boolean {
  return s?.phase === "failed" && !s.live && (s.error?.code === "content_policy" || s.error?.code === "validation");
}

/** The paid output this item can still be saved from, if any. */
function paidOutput(s: ItemState, cache: boolean): string | undefined {
  return s.phase === "completed" || (s.phase === "done" && cache) ? s.videoUrl : undefined;
}

const OVER_WITHOUT_VIDEO = new Set(["generation_failed", "content_policy", "validation", "not_found", "request_cancelled"]);

/**
 * Step 0: submits whose answer was lost are looked up on fal's request list; one found is
 * re-attached instead of paid for again ("found and used"), and further ones (twins) are
 * journaled and cancelled. What fal cannot explain stays flagged as a possible double charge.
 */
async function reconcile(item: PlanItem, ctx: ItemContext): Promise<void> {
  const { state: s, journal } = ctx;
  if (s.live || !s.unreconciled.length || ctx.platformAvailable?.() === false) return;
  const sentAts = s.unreconciled;
  s.unreconciled = [];
  let found: HailuoHandle[];
  try {
    found = await findLostSubmits(ctx.client, item.input, sentAts, ctx.knownRequestIds?.() ?? new Set(s.requestIds), ctx.signal);
  } catch (error) {
    if ((error as HailuoError).code === "platform_unavailable") return ctx.onPlatformUnavailable?.(error as HailuoError);
    throw error;
  }
  for (const [i, handle] of found.entries()) {
    const twin = i > 0 || s.live;
    await journal.append({ t: "reconciled", key: item.key, handle, ...(twin ? { twin } : {}) });
    s.ambiguousSubmits = Math.max(0, s.ambiguousSubmits - 1);
    s.requestIds.push(handle.requestId);
    if (!twin) Object.assign(s, { phase: "submitted", live: true, handle, videoUrl: undefined, fileSize: undefined });
    else await ctx.client.cancel(handle, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
    ctx.emit({ type: "warning", message: `${item.sceneId}: a submit whose answer was lost was found on fal (request ${handle.requestId}) and ${twin ? "cancelled as a twin" : "re-attached"}; not paid twice` });
  }
}

/** Step 1: a request for this item exists on fal and is journaled (submits one when needed). */
async function ensureSubmitted(item: PlanItem, ctx: ItemContext, say: (p: ItemPhase, x?: object) => void): Promise<HailuoHandle> {
  const { journal, state: s } = ctx;
  if (s.live && s.handle) {
    say("queued", { requestId: s.handle.requestId, detail: "re-attached" });
    return s.handle;
  }
  if (ctx.reserve && !ctx.reserve(item.costUsd)) throw new BudgetError("budget reached (billed and in flight); not submitted");
  say("submitting");
  await journal.append({ t: "submitting", key: item.key, scene: item.sceneId, take: item.take, attempt: s.attempts + 1, usd: item.costUsd });
  s.attempts++;
  s.phase = "submitting";
  ctx.onSubmitInFlight?.(true);
  let handle: HailuoHandle;
  try {
    handle = await ctx.client.submit(item.input, { signal: ctx.submitSignal ?? ctx.signal });
  } catch (error) {
    const e = error as HailuoError;
    if (e.code === "submit_ambiguous" || e.code === "cancelled") {
      // It left this machine and its answer never came: maybe billed. It stays reserved against
      // the budget and is flagged in the report with its cost.
      s.ambiguousSubmits++;
      // Best effort: without it, replay still flags a "submitting" that has no answer.
      await journal.append({ t: "ambiguous", key: item.key, message: e.code === "cancelled" ? "aborted while on the wire" : e.message, ...(e.requestId ? { requestId: e.requestId } : {}) }).catch(() => {});
    } else {
      ctx.release?.(item.costUsd);
      await journal.append({ t: "refused", key: item.key, code: e.code, message: e.message }).catch(() => {});
    }
    if (e.code === "submit_ambiguous" || e.code === "cancelled") s.unreconciled.push(new Date().toISOString());
    s.phase = "new";
    throw error;
  } finally {
    ctx.onSubmitInFlight?.(false);
  }
  await journal.append({ t: "submitted", key: item.key, handle });
  Object.assign(s, { phase: "submitted", live: true, handle, videoUrl: undefined, fileSize: undefined });
  s.requestIds.push(handle.requestId);
  return handle;
}

/** Step 2: wait for the request and fetch its result; journals the paid URL before any download. */
async function awaitOutput(item: PlanItem, handle: HailuoHandle, ctx: ItemContext, say: (p: ItemPhase, x?: object) => void, setStage: (s: ItemStage) => void): Promise<void> {
  const { journal, state: s, signal } = ctx;
  const entry: { handle: HailuoHandle; state?: HailuoStatus["state"] } = { handle };
  ctx.onLive?.(entry);
  try {
    setStage("wait");
    const status = await ctx.client.wait(handle, {
      signal,
      timeoutMs: ctx.itemTimeoutMs ?? 900_000,
      mode: ctx.waitMode,
      onUpdate: (st) => {
        entry.state = st.state;
        if (st.state === "queued") say("queued", { requestId: handle.requestId, queuePosition: st.queuePosition });
        else if (st.state === "in_progress") say("in_progress", { requestId: handle.requestId, detail: st.logs.at(-1)?.message });
      },
    });
    setStage("result");
    const output = await resultForStatus(ctx.client, handle, status, signal);
    const videoUrl = output.video.url;
    const fileSize = output.video.file_size || undefined;
    await journal.append({ t: "completed", key: item.key, requestId: handle.requestId, videoUrl, fileSize, seconds: Number(item.input.duration), usd: item.costUsd });
    Object.assign(s, { phase: "completed", live: false, videoUrl, fileSize, outputRequestId: handle.requestId, unsaved: undefined });
    ctx.onLive?.(undefined);
  } catch (error) {
    const e = error as HailuoError;
    if (OVER_WITHOUT_VIDEO.has(e.code)) {
      // The request is over and fal bills no failure: its reservation is free again.
      await journal.append({ t: "ended", key: item.key, requestId: handle.requestId, code: e.code });
      s.live = false;
      ctx.release?.(item.costUsd);
      ctx.onLive?.(undefined);
    }
    // Otherwise the request may still be running: it stays listed for cancel-on-exit.
    throw error;
  }
}

/**
 * One generation, from wherever the journal left it to a verified clip on disk, in steps that
 * each resume from the journal: ensure submitted → await output → save clip. Failures go through
 * `classifyFailure`: retry the same request, submit anew, give up on the item, or stop the run.
 * Never throws for the item's own failures; says how it ended.
 */
export async function processItem(item: PlanItem, ctx: ItemContext): Promise<ItemOutcome> {
  const { runDir, journal, signal, state: s, retries = 3, cache = true, clock = systemClock } = ctx;
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
  if (s.phase === "done" && !cache) s.videoUrl = undefined;
  if (paidOutput(s, cache) && s.phase === "done") {
    ctx.emit({ type: "warning", message: `${item.sceneId}: clip ${s.clip?.file} is missing or corrupt; downloading the paid clip again` });
  }
  let tries = 0;
  for (;;) {
    if (signal.aborted) {
      say("interrupted", { requestId: s.handle?.requestId });
      return "interrupted";
    }
    let stage: ItemStage = "submit";
    try {
      let videoUrl = paidOutput(s, cache);
      if (!videoUrl) {
        await reconcile(item, ctx);
        const handle = await ensureSubmitted(item, ctx, say);
        await awaitOutput(item, handle, ctx, say, (st) => (stage = st));
        videoUrl = s.videoUrl!;
      }
      stage = "save";
      const requestId = s.outputRequestId ?? s.handle?.requestId ?? "unknown";
      say("downloading", { requestId });
      const clip = await saveClip(runDir, item, requestId, videoUrl, s.fileSize, signal);
      await journal.append({ t: "done", key: item.key, requestId, ...clip });
      Object.assign(s, { phase: "done", clip, unsaved: undefined, error: undefined });
      s.clips = [...s.clips.filter((c) => c.requestId !== requestId), { ...clip, requestId }];
      say("done", { requestId, detail: clip.file });
      return "done";
    } catch (error) {
      const e = error instanceof HailuoError ? error : new HailuoError("internal", redactSecrets(String((error as Error)?.message ?? error)), { cause: error });
      if (signal.aborted) {
        say("interrupted", { requestId: s.handle?.requestId });
        return "interrupted";
      }
      const action = classifyFailure(e, stage, tries < retries);
      const requestId = s.handle?.requestId;
      if (action.kind === "give_up" || action.kind === "stop_run") {
        s.error = { code: e.code, message: e.message, retryable: e.retryable };
        // Best effort: on a full disk this record may not land, and the journal without it says
        // no less (a live request is re-attached, a completed one downloaded again).
        const note = (r: JournalRecord) => journal.append(r).catch(() => {});
        if (stage === "save") {
          // Paid for, not saved: the URL stays journaled and resume downloads it again.
          s.unsaved = { code: e.code, message: e.message };
          await note({ t: "save_failed", key: item.key, requestId: s.outputRequestId ?? requestId ?? "", code: e.code, message: e.message });
        } else {
          s.live = action.kind === "give_up" ? action.keepLive && s.live : s.live;
          s.phase = "failed";
          await note({ t: "failed", key: item.key, code: e.code, message: e.message, retryable: e.retryable, requestId, live: s.live });
        }
        say("failed", { requestId, detail: `${e.code}: ${e.message}` });
        if (action.kind === "stop_run") ctx.onStopRun?.(e);
        return "failed";
      }
      if (action.kind === "resubmit") s.live = false;
      tries++;
      const delayMs = backoffDelayMs(tries - 1, e, { baseDelayMs: ctx.retryBaseDelayMs ?? 1000, maxDelayMs: ctx.retryMaxDelayMs ?? 30_000 });
      const retryStage = action.kind === "resubmit" ? (stage === "submit" ? "submit" : "generate") : stage;
      await journal.append({ t: "retry", key: item.key, attempt: s.attempts, code: e.code, message: e.message, delayMs, stage: retryStage }).catch(() => {});
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
