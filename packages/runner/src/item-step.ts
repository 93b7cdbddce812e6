import {
  HailuoError,
  abortError,
  backoffDelayMs,
  redactSecrets,
  systemClock,
} from "@hailuo/shared";
import { classifyFailure, type FailureAction, type ItemStage } from "./classify.js";
import { saveClip } from "./clip-file.js";
import type { ItemPhase, RunEvent } from "./events.js";
import {
  isFinalFailure,
  isPaid,
  journalAndApply,
  paidOutput,
  type ItemContext,
  type ItemOutcome,
} from "./item-context.js";
import type { PlanItem } from "./plan.js";
import {
  type Say,
  awaitCompletion,
  ensureSubmitted,
  fetchOutput,
  reconcile,
  refetchPaidOutput,
} from "./request-steps.js";

const now = <T>(work: () => Promise<T>): Promise<T> => work();

/** The item with its images' URLs in its input, as it is submitted (and looked up on fal's list). */
async function withImageUrls(item: PlanItem, ctx: ItemContext, say: Say): Promise<PlanItem> {
  if (!ctx.images)
    throw new HailuoError(
      "usage",
      `${item.sceneId}#${item.take}: an image-to-video scene's images are uploaded by \`hailuo run\` / \`hailuo resume\`; this runner cannot (nothing was submitted)`,
      { retryable: false },
    );
  const from = item.lastFrame
    ? `first frame: last frame of ${item.lastFrame.sceneId}#${item.lastFrame.take}`
    : undefined;
  say("uploading", from ? { detail: from } : {});
  const urls = await ctx.images.urlsFor(item, ctx.signal);
  return { ...item, input: { ...item.input, ...urls } };
}

/** Journals an item given up (or a run stopped) at `stage`; a paid clip not saved stays "completed, not saved". */
async function recordGiveUp(
  item: PlanItem,
  ctx: ItemContext,
  e: HailuoError,
  stage: ItemStage,
  action: Extract<FailureAction, { kind: "give_up" | "stop_run" }>,
): Promise<void> {
  const { state: s } = ctx;
  // Best effort: on a full disk this record may not land, and the journal without it says no
  // less (a live request is re-attached, a completed one downloaded again).
  const bestEffort = { bestEffort: true };
  if (stage === "save") {
    // Paid for, not saved: the URL stays journaled and resume downloads it again.
    const requestId = s.outputRequestId ?? s.handle?.requestId ?? "";
    await journalAndApply(
      ctx,
      { t: "save_failed", key: item.key, requestId, code: e.code, message: e.message },
      bestEffort,
    );
    return;
  }
  const live = action.kind === "give_up" ? action.keepLive && s.live : s.live;
  await journalAndApply(
    ctx,
    {
      t: "failed",
      key: item.key,
      code: e.code,
      message: e.message,
      retryable: e.retryable,
      requestId: s.handle?.requestId,
      live,
    },
    bestEffort,
  );
}

/**
 * One generation, from wherever the journal left it to a verified clip on disk, in steps that
 * each resume from the journal: ensure submitted → await output → save clip. Failures go through
 * `classifyFailure`: retry the same request, submit anew, give up on the item, or stop the run.
 * Never throws for the item's own failures; says how it ended.
 */
export async function processItem(item: PlanItem, ctx: ItemContext): Promise<ItemOutcome> {
  const { store, signal, state: s, retries = 3, cache = true, clock = systemClock } = ctx;
  const say = (phase: ItemPhase, extra: Partial<Extract<RunEvent, { type: "item" }>> = {}) =>
    ctx.emit({
      type: "item",
      key: item.key,
      sceneId: item.sceneId,
      take: item.take,
      phase,
      ...extra,
    });
  if (ctx.intact) {
    say("cached", { requestId: s.clips.at(-1)?.requestId });
    return "cached";
  }
  if (isFinalFailure(s)) {
    say("failed", {
      detail: `${s.error?.code}: ${s.error?.message} (not retried for the same input; edit the scene to try again)`,
    });
    return "failed";
  }
  if (isPaid(s, cache) && s.phase === "done") {
    ctx.emit({
      type: "warning",
      message: `${item.sceneId}: clip ${s.clip?.file} is missing or corrupt; downloading the paid clip again`,
    });
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
      if (!videoUrl && isPaid(s, cache)) {
        // Paid, and its URL lost with the journal line that held it: fal's result gives it again.
        stage = "save";
        videoUrl = await refetchPaidOutput(item, ctx);
      }
      if (!videoUrl) {
        const setStage = (st: ItemStage) => (stage = st);
        // A new submit needs its images as URLs: taken and uploaded (or found uploaded) before
        // one of the account's fal slots is held. A live request needs none.
        let ready = item;
        if (!s.live && Object.keys(item.images).length) {
          stage = "prepare";
          ready = await withImageUrls(item, ctx, say);
          stage = "submit";
        }
        // A run stopper (a bad key, say) stops the run before this slot goes to the next item.
        const stopRunOn = (error: unknown): never => {
          if (
            error instanceof HailuoError &&
            classifyFailure(error, stage, false).kind === "stop_run"
          )
            ctx.guards.stopRun(error);
          throw error;
        };
        const over = await (ctx.falSlot ?? now)(async () => {
          // A stop while this item waited for a slot: nothing of it has left yet.
          if (signal.aborted) throw abortError(signal);
          try {
            await reconcile(ready, ctx);
            const handle = await ensureSubmitted(ready, ctx, say);
            return { handle, status: await awaitCompletion(item, handle, ctx, say, setStage) };
          } catch (error) {
            return stopRunOn(error);
          }
        });
        await fetchOutput(item, over.handle, over.status, ctx, setStage).catch(stopRunOn);
        videoUrl = s.videoUrl!;
      }
      stage = "save";
      const requestId = s.outputRequestId ?? s.handle?.requestId ?? "unknown";
      say("downloading", { requestId });
      const url = videoUrl;
      const clip = await (ctx.saveSlot ?? now)(async () => {
        const saved = await saveClip(store.dir, item, requestId, url, s.fileSize, signal);
        // Kept in the run's store before it is called done: a clip the bucket refused stays
        // paid and not saved, and the save is retried (never the submit).
        await store.putArtifact(saved.file);
        return saved;
      });
      await journalAndApply(ctx, { t: "done", key: item.key, requestId, ...clip });
      say("done", { requestId, detail: clip.file });
      return "done";
    } catch (error) {
      const e =
        error instanceof HailuoError
          ? error
          : new HailuoError("internal", redactSecrets(String((error as Error)?.message ?? error)), {
              cause: error,
            });
      if (signal.aborted) {
        say("interrupted", { requestId: s.handle?.requestId });
        return "interrupted";
      }
      const action = classifyFailure(e, stage, tries < retries);
      const requestId = s.handle?.requestId;
      if (action.kind === "give_up" || action.kind === "stop_run") {
        await recordGiveUp(item, ctx, e, stage, action);
        say("failed", { requestId, detail: `${e.code}: ${e.message}` });
        if (action.kind === "stop_run") ctx.guards.stopRun(e);
        return "failed";
      }
      tries++;
      const delayMs = backoffDelayMs(tries - 1, e, {
        baseDelayMs: ctx.retryBaseDelayMs ?? 1000,
        maxDelayMs: ctx.retryMaxDelayMs ?? 30_000,
      });
      const retryStage =
        action.kind === "resubmit" ? (stage === "submit" ? "submit" : "generate") : stage;
      // A new submit leaves the old request behind (stage "generate" ends its being live).
      await journalAndApply(
        ctx,
        {
          t: "retry",
          key: item.key,
          attempt: s.attempts,
          code: e.code,
          message: e.message,
          delayMs,
          stage: retryStage,
        },
        { bestEffort: true },
      );
      say("retrying", {
        requestId,
        detail: `${e.code} during ${stage}; retry ${tries}/${retries} in ${(delayMs / 1000).toFixed(1)} s`,
      });
      try {
        await clock.sleep(delayMs, signal);
      } catch {
        say("interrupted", { requestId });
        return "interrupted";
      }
    }
  }
}
