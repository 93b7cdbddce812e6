import type { HailuoHandle } from "@hailuo/core";
import type { ClipFacts, StoredRecord } from "./journal-store.js";

/** What the journal says about one generation (by input key). */
export interface ItemState {
  key: string;
  /** Where the item stands now. */
  phase: "new" | "submitting" | "submitted" | "completed" | "done" | "failed";
  /** Submit attempts ever made (including ambiguous ones). */
  submits: number;
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
}

/** Replays a journal into per-item state; pure, so `hailuo status` needs no network. */
export function replayJournal(records: StoredRecord[], items: Map<string, ItemState> = new Map()): Map<string, ItemState> {
  const get = (key: string) => {
    let s = items.get(key);
    if (!s) {
      s = { key, phase: "new", submits: 0, attempts: 0, requestIds: [], clips: [], live: false, unreconciled: [] };
      items.set(key, s);
    }
    return s;
  };
  const touched = new Set<ItemState>();
  for (const r of records) {
    if (!("key" in r)) continue;
    const s = get(r.key);
    touched.add(s);
    s.firstAt ??= r.at;
    s.lastAt = r.at;
    switch (r.t) {
      case "submitting":
        // A submitting with no submitted after it means the answer never reached the journal.
        if (s.phase === "submitting" && s.sentAt) s.unreconciled.push(s.sentAt);
        s.sentAt = r.at;
        s.phase = "submitting";
        s.submits++;
        s.attempts = Math.max(s.attempts, r.attempt);
        s.error = undefined;
        break;
      case "ambiguous":
        if (s.sentAt) s.unreconciled.push(s.sentAt);
        s.phase = "new";
        break;
      case "reconciled":
        // Found on fal: no longer a possible double charge, and (unless a twin) the item's request.
        s.unreconciled.shift();
        s.requestIds.push(r.handle.requestId);
        if (!r.twin) Object.assign(s, { phase: "submitted", live: true, handle: r.handle, videoUrl: undefined, fileSize: undefined });
        break;
      case "refused":
        if (s.phase === "submitting") s.phase = "new";
        break;
      case "ended":
        // The request is over without a video; nothing to re-attach to.
        if (s.handle?.requestId === r.requestId) s.live = false;
        break;
      case "save_failed":
        s.phase = "completed";
        s.unsaved = { code: r.code, message: r.message };
        break;
      case "submitted":
        s.phase = "submitted";
        s.live = true;
        s.handle = r.handle;
        s.requestIds.push(r.handle.requestId);
        s.videoUrl = undefined;
        s.fileSize = undefined;
        break;
      case "completed":
        // Its `submitted` line may be lost: the request is the item's all the same.
        if (!s.requestIds.includes(r.requestId)) s.requestIds.push(r.requestId);
        s.phase = "completed";
        s.live = false;
        s.videoUrl = r.videoUrl;
        s.fileSize = r.fileSize;
        s.outputRequestId = r.requestId;
        s.unsaved = undefined;
        break;
      case "recovered": {
        const { t: _t, at: _at, key: _k, requestId, via: _v, usd: _u, seconds: _s, ...clip } = r;
        if (!s.requestIds.includes(requestId)) s.requestIds.push(requestId);
        Object.assign(s, { phase: "done", live: false, clip, error: undefined, unsaved: undefined, unreconciled: [] });
        s.clips = [...s.clips.filter((c) => c.requestId !== requestId), { ...clip, requestId }];
        break;
      }
      case "done": {
        const { t: _t, at: _at, key: _k, requestId, ...clip } = r;
        if (!s.requestIds.includes(requestId)) s.requestIds.push(requestId);
        s.phase = "done";
        s.live = false;
        s.clip = clip;
        // A clip downloaded again replaces its earlier copy: one paid request, one clip.
        s.clips = [...s.clips.filter((c) => c.requestId !== requestId), { ...clip, requestId }];
        s.error = undefined;
        s.unsaved = undefined;
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
        // A submit that was refused outright (429, 5xx) created nothing: not ambiguous.
        if (r.stage === "submit" && s.phase === "submitting") s.phase = "new";
        if (r.stage === "generate") s.live = false;
        break;
    }
  }
  // A run that died between "submitting" and "submitted" left an ambiguous submit behind. Only the
  // items these records touched (the rest were settled by the replay that read them): a queue
  // worker replays a record or two per job into a run's whole state.
  for (const s of touched) {
    if (s.phase !== "submitting") continue;
    if (s.sentAt) s.unreconciled.push(s.sentAt);
    s.phase = "new";
  }
  return items;
}
