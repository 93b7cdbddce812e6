import { resultForStatus, type HailuoHandle, type HailuoStatus } from "@hailuo/core";
import { HailuoError } from "@hailuo/shared";
import type { ItemStage } from "./classify.js";
import type { ItemPhase } from "./events.js";
import {
  AnswersLostError,
  BudgetError,
  journalAndApply,
  type ItemContext,
} from "./item-context.js";
import type { PlanItem } from "./plan.js";
import { requestIdPrefix } from "./clip-file.js";
import { findLostSubmits } from "./reconcile.js";

/** What a step reports to people: a phase and details. */
export type Say = (phase: ItemPhase, extra?: object) => void;

const OVER_WITHOUT_VIDEO = new Set([
  "generation_failed",
  "content_policy",
  "validation",
  "not_found",
  "request_cancelled",
]);

/**
 * Step 0: submits whose answer was lost are looked up on fal's request list; one found is
 * re-attached instead of paid for again ("found and used"), and further ones (twins) are
 * journaled and cancelled. What fal cannot explain stays flagged as a possible double charge.
 */
export async function reconcile(item: PlanItem, ctx: ItemContext): Promise<void> {
  const { state: s } = ctx;
  const sentAts = [...s.unreconciled, ...(s.lookUpSince ? [s.lookUpSince] : [])];
  if (s.live || !sentAts.length || !ctx.guards.platformAvailable()) return;
  const lookedUpAt = Date.now();
  let candidates: HailuoHandle[];
  try {
    candidates = await findLostSubmits(ctx.client, item.input, sentAts, ctx.signal);
    // Asked once: not a record, so it never enters what the journal says of the item.
    if (s.lookUpSince !== undefined) delete s.lookUpSince;
  } catch (error) {
    // Not explained: they still count against the item's resends.
    if ((error as HailuoError).code === "platform_unavailable")
      return ctx.guards.platformUnavailable(error as HailuoError);
    throw error;
  }
  // Claimed before the first await, so two takes of one input that both lost an answer never
  // take the same request (their steps run side by side).
  const known = ctx.guards.knownRequestIds();
  // A clip adopted from disk by its file name is known by the id's first eight letters only.
  const isKnown = (id: string) => known.has(id) || known.has(requestIdPrefix(id));
  const found = candidates.filter((h) => !isKnown(h.requestId)).slice(0, sentAts.length);
  ctx.guards.claimRequestIds(found.map((h) => h.requestId));
  for (const [i, handle] of found.entries()) {
    const twin = i > 0;
    await journalAndApply(ctx, {
      t: "reconciled",
      key: item.key,
      handle,
      ...(twin ? { twin } : {}),
    });
    if (twin)
      await ctx.client
        .cancel(handle, { signal: AbortSignal.timeout(10_000) })
        .catch(() => undefined);
    ctx.emit({
      type: "warning",
      message: `${item.sceneId}: a submit whose answer was lost was found on fal (request ${handle.requestId}) and ${twin ? "cancelled as a twin" : "re-attached"}; not paid twice`,
    });
  }
  // fal's list holds no request for the rest sent before the look-up: they never became requests
  // (the list is fal's record of its queue; a submit it shows no trace of was not queued).
  const before = new Date(lookedUpAt).toISOString();
  const unfound = s.unreconciled.filter((t) => t < before).length;
  if (unfound) await journalAndApply(ctx, { t: "unfound", key: item.key, lost: unfound, before });
}

/** Step 1: a request for this item exists on fal and is journaled (submits one when needed). */
export async function ensureSubmitted(
  item: PlanItem,
  ctx: ItemContext,
  say: Say,
): Promise<HailuoHandle> {
  const { state: s } = ctx;
  if (s.live && s.handle) {
    say("queued", { requestId: s.handle.requestId, detail: "re-attached" });
    return s.handle;
  }
  // Each unexplained lost answer may be a billed request: resend only so often, then stop paying.
  const lost = s.unreconciled.length;
  const resends = ctx.lostAnswerResends ?? 1;
  if (lost > resends) {
    throw new AnswersLostError(
      `${item.sceneId}#${item.take}: ${lost} submits lost their answers and fal's request list could not say whether they were queued (each may be billed: $${(lost * item.costUsd).toFixed(2)}); not sending another. Look for them on fal's dashboard; to allow one more resend, resume with --resend-lost ${lost}`,
      lost,
    );
  }
  if (!(await ctx.guards.budget.reserve(item.costUsd, item.key)))
    throw new BudgetError("budget reached (billed and in flight); not submitted");
  say("submitting");
  await journalAndApply(ctx, {
    t: "submitting",
    key: item.key,
    scene: item.sceneId,
    take: item.take,
    attempt: s.attempts + 1,
    usd: item.costUsd,
  });
  ctx.guards.submitInFlight(true);
  let handle: HailuoHandle;
  try {
    // Paused between the record and the send past its hold, the next holder may have submitted.
    await ctx.beforeSend?.();
    handle = await ctx.client.submit(item.input, {
      signal: ctx.submitSignal ?? ctx.signal,
      beforeResend: ctx.beforeSend,
    });
  } catch (error) {
    const e = error as HailuoError;
    ctx.guards.submitReached(!(e.code === "network" && e.details?.notSent === true), e);
    // A cancel that came before the submit was sent (or while waiting to send it again) left
    // nothing on fal: it is not a possible charge.
    const unsent = e.code === "cancelled" && e.details?.notSent === true;
    if (e.code === "submit_ambiguous" || (e.code === "cancelled" && !unsent)) {
      // It left this machine and its answer never came: maybe billed. It stays reserved against
      // the budget and is flagged in the report with its cost.
      // Best effort: without it, replay still flags a "submitting" that has no answer.
      const message = e.code === "cancelled" ? "aborted while on the wire" : e.message;
      await journalAndApply(
        ctx,
        {
          t: "ambiguous",
          key: item.key,
          message,
          ...(e.requestId ? { requestId: e.requestId } : {}),
        },
        { bestEffort: true },
      );
    } else {
      // A release that fails (Redis away) only keeps the budget reserved: the safe side.
      await Promise.resolve(ctx.guards.budget.release(item.costUsd, item.key)).catch(() => {});
      await journalAndApply(
        ctx,
        { t: "refused", key: item.key, code: e.code, message: e.message },
        { bestEffort: true },
      );
    }
    throw error;
  } finally {
    ctx.guards.submitInFlight(false);
  }
  ctx.guards.submitReached(true);
  await journalAndApply(ctx, { t: "submitted", key: item.key, handle });
  return handle;
}

/**
 * Step 2: wait until the request is over. Only this runs in the account's fal slot: fal counts a
 * request against the account's concurrency only while IN_PROGRESS
 * (https://docs.fal.ai/documentation/model-apis/concurrency-limits), so the next submit need not
 * wait for step 3.
 */
export async function awaitCompletion(
  item: PlanItem,
  handle: HailuoHandle,
  ctx: ItemContext,
  say: Say,
  setStage: (s: ItemStage) => void,
): Promise<HailuoStatus> {
  const entry: { handle: HailuoHandle; state?: HailuoStatus["state"] } = { handle };
  ctx.guards.live(item.key, entry);
  setStage("wait");
  return ctx.client
    .wait(handle, {
      signal: ctx.signal,
      timeoutMs: ctx.itemTimeoutMs ?? 900_000,
      mode: ctx.waitMode,
      onUpdate: (st) => {
        entry.state = st.state;
        if (st.state === "queued")
          say("queued", { requestId: handle.requestId, queuePosition: st.queuePosition });
        else if (st.state === "in_progress")
          say("in_progress", { requestId: handle.requestId, detail: st.logs.at(-1)?.message });
      },
    })
    .catch((error: unknown) => overWithoutVideo(item, handle, ctx, error));
}

/** Step 3: fetch the finished request's result; journals the paid URL before any download. */
export async function fetchOutput(
  item: PlanItem,
  handle: HailuoHandle,
  status: HailuoStatus,
  ctx: ItemContext,
  setStage: (s: ItemStage) => void,
): Promise<void> {
  const { signal } = ctx;
  setStage("result");
  const output = await resultForStatus(ctx.client, handle, status, signal).catch((error: unknown) =>
    overWithoutVideo(item, handle, ctx, error),
  );
  const videoUrl = output.video.url;
  const fileSize = output.video.file_size || undefined;
  await journalAndApply(ctx, {
    t: "completed",
    key: item.key,
    requestId: handle.requestId,
    videoUrl,
    fileSize,
    seconds: Number(item.input.duration),
    usd: item.costUsd,
  });
  ctx.emit({
    type: "billed",
    key: item.key,
    sceneId: item.sceneId,
    take: item.take,
    requestId: handle.requestId,
    usd: item.costUsd,
  });
  ctx.guards.live(item.key, undefined);
}

/**
 * The output URL of a paid clip whose `completed` line was lost (a damaged journal, a clip adopted
 * from disk): asked of fal's result again and journaled. A request known only by the eight
 * letters a file name keeps cannot be asked for: the item is never submitted again for it.
 */
export async function refetchPaidOutput(item: PlanItem, ctx: ItemContext): Promise<string> {
  const { state: s } = ctx;
  const requestId = s.outputRequestId ?? s.clips.at(-1)?.requestId;
  if (!requestId || requestId === requestIdPrefix(requestId)) {
    throw new HailuoError(
      "clip_unrecoverable",
      `${item.sceneId}#${item.take}: its paid clip is missing or changed, and only the first letters of its request id are known (${requestId ?? "none"}…, adopted from disk), so it cannot be downloaded again; it is not paid for again. Put the clip back in clips/, or edit the scene to generate a new one`,
      { retryable: false },
    );
  }
  const handle =
    s.handle?.requestId === requestId
      ? s.handle
      : {
          endpoint: item.endpoint,
          requestId,
          submittedAt: s.sentAt ?? new Date(0).toISOString(),
        };
  const output = await ctx.client.result(handle, { signal: ctx.signal });
  // Billed already (its clip was saved once): the ledger counts a request's bill once.
  await journalAndApply(ctx, {
    t: "completed",
    key: item.key,
    requestId,
    videoUrl: output.video.url,
    fileSize: output.video.file_size || undefined,
    seconds: Number(item.input.duration),
    usd: item.costUsd,
  });
  return output.video.url;
}

/** Rethrows a wait or result error; one that ends the request without a video is journaled first. */
async function overWithoutVideo(
  item: PlanItem,
  handle: HailuoHandle,
  ctx: ItemContext,
  error: unknown,
): Promise<never> {
  if (OVER_WITHOUT_VIDEO.has((error as HailuoError).code)) {
    // The request is over and fal bills no failure: its reservation is free again.
    await journalAndApply(ctx, {
      t: "ended",
      key: item.key,
      requestId: handle.requestId,
      code: (error as HailuoError).code,
    });
    await Promise.resolve(ctx.guards.budget.release(item.costUsd, item.key)).catch(() => {});
    ctx.guards.live(item.key, undefined);
  }
  // Otherwise the request may still be running: it stays listed for cancel-on-exit.
  throw error;
}
