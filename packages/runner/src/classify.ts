import type { ErrorCode } from "@hailuo/shared";

/**
 * Where in an item's life an error happened. `prepare`: its images made ready for a submit
 * (a file read and checked, a last frame taken, an upload), before anything is sent to fal.
 */
export type ItemStage = "prepare" | "submit" | "wait" | "result" | "save";

/** What to do about a failed step. */
export type FailureAction =
  /** Ask about the same request again (wait, fetch the result, download): costs nothing. */
  | { kind: "retry_request" }
  /** Submit anew. `ambiguous`: the previous submit may have been billed, so it is flagged. */
  | { kind: "resubmit"; ambiguous: boolean }
  /** The item failed for this run. `keepLive`: its request may still finish on fal; resume re-attaches. */
  | { kind: "give_up"; keepLive: boolean }
  /** Every other item would fail the same way (bad key, full disk, no ffmpeg): stop submitting. */
  | { kind: "stop_run" };

/** Errors that end a whole run: every other item would meet them too (a bad key, a full disk). */
export const STOP_RUN: ReadonlySet<ErrorCode> = new Set([
  "auth",
  "disk_full",
  "unwritable",
  "ffmpeg_missing",
  "wrong_backend",
  "unreachable",
  "answers_lost",
]);
const FINAL: ReadonlySet<ErrorCode> = new Set([
  "content_policy",
  "validation",
  "budget",
  "cancelled",
  "unsafe_path",
]);

/**
 * The one decision of what a failure means for an item (pure; table-tested). `triesLeft` says
 * whether the item's retry allowance has room. A paid request is never given up for a new submit:
 * only a failed generation, a refused submit, or an ambiguous one (flagged) leads to a new submit.
 */
export function classifyFailure(
  error: { code: ErrorCode; retryable: boolean },
  stage: ItemStage,
  triesLeft: boolean,
): FailureAction {
  const { code } = error;
  if (STOP_RUN.has(code)) return { kind: "stop_run" };
  if (FINAL.has(code)) return { kind: "give_up", keepLive: false };
  // A wait that timed out leaves the request running on fal: resume re-attaches, never resubmits.
  if (code === "timeout" && stage === "wait") return { kind: "give_up", keepLive: true };
  const liveAfter = stage === "wait" || stage === "result";
  // The backend no longer knows the request (a restarted emulator), or fal cancelled it: nothing
  // was billed and nothing is left to re-attach to.
  if ((code === "not_found" || code === "request_cancelled") && liveAfter)
    return triesLeft
      ? { kind: "resubmit", ambiguous: false }
      : { kind: "give_up", keepLive: false };
  if (code === "generation_failed")
    return triesLeft
      ? { kind: "resubmit", ambiguous: false }
      : { kind: "give_up", keepLive: false };
  if (code === "submit_ambiguous")
    return triesLeft ? { kind: "resubmit", ambiguous: true } : { kind: "give_up", keepLive: false };
  if (!error.retryable || !triesLeft) return { kind: "give_up", keepLive: liveAfter };
  // fal refused the submit before queueing it (the core only lets such errors through as retryable).
  if (stage === "submit") return { kind: "resubmit", ambiguous: false };
  return { kind: "retry_request" };
}
