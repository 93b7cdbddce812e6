import type { HailuoHandle } from "@hailuo/core";
import type { ClipFacts, StoredRecord } from "./journal-store.js";

/**
 * What became of one fal request. fal bills successful outputs only (duration × price), never a
 * failure, a cancellation before start or queue time (https://fal.ai/pricing), so only `billed`
 * costs money; `unknown` is a request still running (or whose fate was never seen).
 */
export type RequestFate = "billed" | "failed" | "cancelled" | "unknown";

/** A request fal answered for a generation, and what it cost: a line of the ledger. */
export interface ItemRequest {
  requestId: string;
  fate: RequestFate;
  /** What fal billed (when billed); absent in journals older than journaled prices: the plan's price. */
  usd?: number;
  seconds?: number;
  /** Sent by the run being reported (not an earlier run into the same folder). */
  thisRun: boolean;
  /** Its submit's answer was lost; found on fal's request list and re-attached. */
  reconciled?: boolean;
  /** The price its submit was journaled with: what it costs if it ends with a video. */
  quotedUsd?: number;
}

/** A submit whose answer was never seen: fal may have queued and billed it with no id known to us. */
export interface LostSubmit {
  scene?: string;
  take?: number;
  /** What it would cost if fal ran it (absent in old journals: the plan's price). */
  usd?: number;
  requestId?: string;
  reason: string;
  thisRun: boolean;
  /** When it was sent. */
  at: string;
}

/** What the journal says about one generation (by input key). */
export interface ItemState {
  key: string;
  /** Where the item stands now. */
  phase: "new" | "submitting" | "submitted" | "completed" | "done" | "failed";
  /** Submits sent for this item, ambiguous ones included (the highest attempt journaled). */
  attempts: number;
  handle?: HailuoHandle;
  /** Every request id ever answered for this item. */
  requestIds: string[];
  videoUrl?: string;
  fileSize?: number;
  /** The request whose output `videoUrl` is. */
  outputRequestId?: string;
  clip?: ClipFacts;
  /** Every clip ever finished for this input (newest last); all were paid for. */
  clips: (ClipFacts & { requestId: string })[];
  error?: { code: string; message: string; retryable: boolean };
  /** Paid (completed) but the clip could not be saved: resume downloads it again, never resubmits. */
  unsaved?: { code: string; message: string };
  /** Send times of submits whose answer was lost and that fal's request list has not yet explained. */
  unreconciled: string[];
  /** The last request is still running (or may be) on fal: re-attach to it, never submit again. */
  live: boolean;
  firstAt?: string;
  lastAt?: string;
  /** When the last submit was journaled as sent. */
  sentAt?: string;
  /**
   * Not from a record: the journal lost records, so fal's request list is asked for a request
   * of this input sent since then before the item's first submit (set by `recoverFromWitnesses`).
   */
  lookUpSince?: string;
  /** Every request fal answered for this generation and its fate: the money it cost. */
  requests: ItemRequest[];
  /** Submits whose answer was lost and that fal's list has not shown to be a known request. */
  lost: LostSubmit[];
  /** The submit on the wire: sent, not yet answered. */
  pending?: Omit<LostSubmit, "reason" | "requestId">;
}

/** A state for a generation the journal has never seen. */
export function newItemState(key: string): ItemState {
  return {
    key,
    phase: "new",
    attempts: 0,
    requestIds: [],
    clips: [],
    live: false,
    unreconciled: [],
    requests: [],
    lost: [],
  };
}

const UNANSWERED = "sent, then the process stopped before its answer was journaled";

/** A submit whose answer never came becomes a possible charge. */
function flagPending(s: ItemState, reason: string, requestId?: string): void {
  if (!s.pending) return;
  s.lost.push({ ...s.pending, reason, ...(requestId ? { requestId } : {}) });
  s.pending = undefined;
}

/**
 * The request `requestId` of this generation; one first seen in its outcome (the line that
 * announced it was lost) answers the pending submit, which is then no possible double charge.
 */
function requestOf(s: ItemState, requestId: string, thisRun: boolean): ItemRequest {
  let q = s.requests.find((x) => x.requestId === requestId);
  if (!q) {
    q = { requestId, fate: "unknown", thisRun: s.pending?.thisRun ?? thisRun };
    s.pending = undefined;
    s.requests.push(q);
  }
  return q;
}

/** A request fal answered, known from now on (its fate not yet seen). */
function know(s: ItemState, requestId: string, thisRun: boolean, reconciled = false): void {
  if (!s.requests.some((q) => q.requestId === requestId)) {
    const quotedUsd = s.pending?.usd;
    s.requests.push({
      requestId,
      fate: "unknown",
      thisRun,
      ...(reconciled ? { reconciled } : {}),
      ...(quotedUsd !== undefined ? { quotedUsd } : {}),
    });
  }
  addId(s, requestId);
}

/** The request becomes the item's live one: waited for, never submitted again. */
function attach(s: ItemState, handle: HailuoHandle): void {
  Object.assign(s, {
    phase: "submitted",
    live: true,
    handle,
    videoUrl: undefined,
    fileSize: undefined,
  });
}

/** Bills a request once (a re-fetch or re-download of a billed request costs nothing more). */
function bill(q: ItemRequest, usd: number | undefined, seconds: number | undefined): void {
  if (q.fate === "billed") return;
  Object.assign(q, { fate: "billed", usd, seconds });
}

const addId = (s: ItemState, requestId: string) => {
  if (!s.requestIds.includes(requestId)) s.requestIds.push(requestId);
};

/**
 * The one place a journal record changes a generation's state: the live steps journal a record
 * and apply it here, and a replay folds the journal through it, so both end in the same state.
 * No I/O and nothing but `r` and `s` decide it; `s` is changed in place (a resume folds 40,000
 * records) and returned. `thisRun`: the record belongs to the run being reported (money split).
 */
export function applyRecord(
  s: ItemState,
  r: StoredRecord & { key: string },
  thisRun = false,
): ItemState {
  s.firstAt ??= r.at;
  s.lastAt = r.at;
  switch (r.t) {
    case "submitting":
      // A submitting with no submitted after it means the answer never reached the journal.
      if (s.phase === "submitting" && s.sentAt) s.unreconciled.push(s.sentAt);
      flagPending(s, UNANSWERED);
      s.pending = { scene: r.scene, take: r.take, usd: r.usd, thisRun, at: r.at };
      s.sentAt = r.at;
      s.phase = "submitting";
      s.attempts = Math.max(s.attempts, r.attempt);
      s.error = undefined;
      break;
    case "ambiguous":
      if (s.sentAt) s.unreconciled.push(s.sentAt);
      flagPending(s, r.message, r.requestId);
      s.phase = "new";
      break;
    case "reconciled":
      // Found on fal: no longer a possible double charge, and (unless a twin) the item's request.
      s.unreconciled.shift();
      if (s.pending) s.pending = undefined;
      else s.lost.shift();
      know(s, r.handle.requestId, thisRun, true);
      if (!r.twin) attach(s, r.handle);
      break;
    case "unfound":
      // fal's request list was read at `before` and holds none of the rest sent before it: they
      // never became requests. Sends after the look-up are not explained by it.
      s.unreconciled = s.unreconciled.filter((t) => t >= r.before);
      // Nor are they possible charges: one lost already, or the one still unanswered (a holder
      // stopped between its record and its answer, whose next holder looked it up).
      s.lost = s.lost.filter((l) => l.requestId !== undefined || l.at >= r.before);
      if (s.pending && s.pending.at < r.before) {
        s.pending = undefined;
        if (s.phase === "submitting") s.phase = "new";
        s.sentAt = undefined;
      }
      break;
    case "refused":
      if (s.phase === "submitting") s.phase = "new";
      s.pending = undefined;
      break;
    case "ended": {
      // The request is over without a video; nothing to re-attach to, nothing billed.
      if (s.handle?.requestId === r.requestId) s.live = false;
      const q = requestOf(s, r.requestId, thisRun);
      if (q.fate === "unknown") q.fate = r.code === "request_cancelled" ? "cancelled" : "failed";
      break;
    }
    case "save_failed":
      s.phase = "completed";
      s.unsaved = { code: r.code, message: r.message };
      s.error = { code: r.code, message: r.message, retryable: true };
      break;
    case "submitted":
      know(s, r.handle.requestId, thisRun);
      s.pending = undefined;
      attach(s, r.handle);
      break;
    case "completed":
      // Its `submitted` line may be lost: the request is the item's all the same.
      bill(requestOf(s, r.requestId, thisRun), r.usd, r.seconds);
      addId(s, r.requestId);
      Object.assign(s, {
        phase: "completed",
        live: false,
        videoUrl: r.videoUrl,
        fileSize: r.fileSize,
        outputRequestId: r.requestId,
        unsaved: undefined,
      });
      break;
    case "recovered":
    case "done": {
      const { t, at: _at, key: _k, requestId, ...rest } = r;
      const {
        via: _v,
        usd,
        seconds,
        ...clip
      } = rest as typeof rest & {
        via?: string;
        usd?: number;
        seconds?: number;
      };
      // A saved clip was fetched from a finished request: billed, even where its `completed` line
      // was lost. A recovered one was paid in a run whose records were lost, not by this one.
      bill(requestOf(s, requestId, t === "recovered" ? false : thisRun), usd, seconds);
      addId(s, requestId);
      Object.assign(s, { phase: "done", live: false, clip, error: undefined, unsaved: undefined });
      if (t === "recovered") s.unreconciled = [];
      // A clip downloaded again replaces its earlier copy: one paid request, one clip.
      s.clips = [...s.clips.filter((c) => c.requestId !== requestId), { ...clip, requestId }];
      break;
    }
    case "failed":
      s.error = { code: r.code, message: r.message, retryable: r.retryable };
      // A failed wait (timeout) leaves the request live on fal: keep the handle to re-attach.
      s.live = r.live;
      // A paid clip that failed to save (older journals said "failed") is still paid for.
      if (s.phase === "completed" && s.videoUrl) s.unsaved ??= { code: r.code, message: r.message };
      else s.phase = s.phase === "done" ? "done" : "failed";
      break;
    case "retry":
      s.attempts = Math.max(s.attempts, r.attempt);
      // Older journals: a submit refused outright was only recorded as a retry of the submit stage.
      if (r.stage === "submit" && r.code !== "submit_ambiguous") s.pending = undefined;
      // A submit that was refused outright (429, 5xx) created nothing: not ambiguous.
      if (r.stage === "submit" && s.phase === "submitting") s.phase = "new";
      if (r.stage === "generate") s.live = false;
      break;
  }
  return s;
}

/**
 * Replays a journal into per-item state by folding `applyRecord`; pure apart from `items`, which
 * it extends (a queue worker replays a record or two per job into a run's whole state), so
 * `hailuo status` needs no network. `thisRun` says which records belong to the run being reported.
 */
export function replayJournal(
  records: StoredRecord[],
  items: Map<string, ItemState> = new Map(),
  options: { thisRun?: (record: StoredRecord, index: number) => boolean } = {},
): Map<string, ItemState> {
  const touched = new Set<ItemState>();
  records.forEach((r, index) => {
    if (!("key" in r)) return;
    let s = items.get(r.key);
    if (!s) items.set(r.key, (s = newItemState(r.key)));
    touched.add(applyRecord(s, r, options.thisRun?.(r, index) ?? false));
  });
  // What is read back is what a process left: a submit still unanswered lost its answer to a
  // crash (a possible charge). Only the items these records touched (the rest were settled by
  // the replay that read them).
  for (const s of touched) {
    flagPending(s, UNANSWERED);
    if (s.phase !== "submitting") continue;
    if (s.sentAt) s.unreconciled.push(s.sentAt);
    s.phase = "new";
  }
  return items;
}

/** A file in fal's storage the run uploaded, as its journal records it. */
export interface JournaledUpload {
  sha256: string;
  url: string;
  bytes: number;
}

/**
 * The files a journal says were uploaded, by the SHA-256 of their content (the newest URL of
 * each). Pure; `into` is extended, so a run adds what it uploads as it goes.
 */
export function uploadsOf(
  records: Iterable<StoredRecord>,
  into: Map<string, JournaledUpload> = new Map(),
): Map<string, JournaledUpload> {
  for (const r of records)
    if (r.t === "uploaded") into.set(r.sha256, { sha256: r.sha256, url: r.url, bytes: r.bytes });
  return into;
}
