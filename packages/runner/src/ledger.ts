import type { StoredRecord } from "./journal-store.js";
import { sumUsd } from "./plan.js";

/**
 * What became of one fal request. fal bills successful outputs only (duration × price), never a
 * failure, a cancellation before start or queue time (https://fal.ai/pricing), so only `billed`
 * costs money; `unknown` is a request still running (or whose fate was never seen).
 */
export type RequestFate = "billed" | "failed" | "cancelled" | "unknown";

/** One request fal answered with an id. */
export interface LedgerRequest {
  requestId: string;
  key: string;
  scene?: string;
  take?: number;
  fate: RequestFate;
  /** What fal billed for it (0 unless billed). */
  usd: number;
  seconds: number;
  /** Submitted by the run being reported (not an earlier run into the same folder). */
  thisRun: boolean;
  /** Its submit's answer was lost; found on fal's request list and re-attached. */
  reconciled?: boolean;
}

/** A submit whose answer was never seen: fal may have queued and billed it with no id known to us. */
export interface AmbiguousSubmit {
  key: string;
  scene?: string;
  take?: number;
  /** What it would cost if fal ran it. */
  usd: number;
  requestId?: string;
  thisRun: boolean;
  reason: string;
}

/** Money totals over a set of requests. */
export interface MoneyTotals {
  /** Exactly what fal billed for requests whose result we saw. */
  billedUsd: number;
  billedSeconds: number;
  billedRequests: number;
  /** Submits whose answer was lost: each may have been billed as well. */
  possibleDoubleChargeUsd: number;
  ambiguousSubmits: number;
  /** Requests still running (or never seen to end): billed only if they finish with a video. */
  inFlightUsd: number;
  /** Lost submits found on fal and re-attached instead of paid for again. */
  reconciled: number;
}

/** The money record of a run folder, derived from its journal alone. */
export interface Ledger {
  requests: Map<string, LedgerRequest>;
  ambiguous: AmbiguousSubmit[];
  folder: MoneyTotals;
  thisRun: MoneyTotals;
}

function totals(
  requests: LedgerRequest[],
  ambiguous: AmbiguousSubmit[],
  estimate: (key: string) => number,
): MoneyTotals {
  const billed = requests.filter((r) => r.fate === "billed");
  return {
    billedUsd: sumUsd(billed.map((r) => r.usd)),
    billedSeconds: billed.reduce((s, r) => s + r.seconds, 0),
    billedRequests: billed.length,
    possibleDoubleChargeUsd: sumUsd(ambiguous.map((a) => a.usd)),
    ambiguousSubmits: ambiguous.length,
    inFlightUsd: sumUsd(requests.filter((r) => r.fate === "unknown").map((r) => estimate(r.key))),
    reconciled: requests.filter((r) => r.reconciled).length,
  };
}

/**
 * Replays a journal into a ledger: every request and what it cost. Pure. Records from index
 * `thisRunFrom` on belong to the run being reported. `estimate` prices a key (and `secondsOf`
 * gives its billed length) where a record lacks it: journals written before prices were
 * journaled, and records inferred because the line that said so was lost.
 */
export function buildLedger(
  records: StoredRecord[],
  options: {
    thisRunFrom?: number;
    estimate?: (key: string) => number;
    secondsOf?: (key: string) => number;
  } = {},
): Ledger {
  const { thisRunFrom = 0, estimate = () => 0, secondsOf = () => 0 } = options;
  const requests = new Map<string, LedgerRequest>();
  const ambiguous: AmbiguousSubmit[] = [];
  // A submit journaled as sent but not yet answered, per key.
  const pending = new Map<string, { scene: string; take: number; usd: number; thisRun: boolean }>();
  const flagPending = (key: string, reason: string, requestId?: string) => {
    const p = pending.get(key);
    if (!p) return;
    pending.delete(key);
    ambiguous.push({
      key,
      scene: p.scene,
      take: p.take,
      usd: p.usd,
      thisRun: p.thisRun,
      reason,
      ...(requestId ? { requestId } : {}),
    });
  };
  // A request first seen in its outcome: the line that announced it (submitted, reconciled) was
  // lost, so it answers the key's pending submit, which is then no possible double charge.
  const requestFor = (requestId: string, key: string, thisRun: boolean): LedgerRequest => {
    let q = requests.get(requestId);
    if (!q) {
      const p = pending.get(key);
      pending.delete(key);
      q = {
        requestId,
        key,
        scene: p?.scene,
        take: p?.take,
        fate: "unknown",
        usd: 0,
        seconds: 0,
        thisRun: p?.thisRun ?? thisRun,
      };
      requests.set(requestId, q);
    }
    return q;
  };
  const bill = (q: LedgerRequest, usd: number | undefined, seconds: number | undefined) => {
    // A re-fetch of a billed request costs nothing more.
    if (q.fate === "billed") return;
    q.fate = "billed";
    q.usd = usd ?? estimate(q.key);
    q.seconds = seconds ?? secondsOf(q.key);
  };
  records.forEach((r, index) => {
    const thisRun = index >= thisRunFrom;
    switch (r.t) {
      case "submitting":
        // Two sends in a row with no answer between them: the first one's fate is unknown.
        flagPending(r.key, "sent, then the process stopped before its answer was journaled");
        pending.set(r.key, {
          scene: r.scene,
          take: r.take,
          usd: r.usd ?? estimate(r.key),
          thisRun,
        });
        break;
      case "submitted": {
        const p = pending.get(r.key);
        pending.delete(r.key);
        const known = requests.get(r.handle.requestId);
        if (!known)
          requests.set(r.handle.requestId, {
            requestId: r.handle.requestId,
            key: r.key,
            scene: p?.scene,
            take: p?.take,
            fate: "unknown",
            usd: 0,
            seconds: 0,
            thisRun,
          });
        break;
      }
      case "ambiguous":
        flagPending(r.key, r.message, r.requestId);
        break;
      case "reconciled": {
        // A lost submit found on fal: it is a known request now, no longer a possible double charge.
        if (pending.has(r.key)) pending.delete(r.key);
        else {
          const i = ambiguous.findIndex((a) => a.key === r.key);
          if (i >= 0) ambiguous.splice(i, 1);
        }
        if (!requests.has(r.handle.requestId))
          requests.set(r.handle.requestId, {
            requestId: r.handle.requestId,
            key: r.key,
            fate: "unknown",
            usd: 0,
            seconds: 0,
            thisRun,
            reconciled: true,
          });
        break;
      }
      case "refused":
        pending.delete(r.key);
        break;
      case "retry":
        // Older journals: a submit refused outright was only recorded as a retry of the submit stage.
        if (r.stage === "submit" && r.code !== "submit_ambiguous") pending.delete(r.key);
        break;
      case "completed":
        bill(requestFor(r.requestId, r.key, thisRun), r.usd, r.seconds);
        break;
      case "done":
        // A saved clip was fetched from a finished request, so it was billed even where its
        // `completed` line was lost.
        bill(requestFor(r.requestId, r.key, thisRun), undefined, undefined);
        break;
      case "recovered":
        // Paid in a run whose records were lost: billed then, not by the run that found it.
        bill(requestFor(r.requestId, r.key, false), r.usd, r.seconds);
        break;
      case "ended": {
        const q = requestFor(r.requestId, r.key, thisRun);
        if (q.fate === "unknown") q.fate = r.code === "request_cancelled" ? "cancelled" : "failed";
        break;
      }
    }
  });
  for (const key of [...pending.keys()])
    flagPending(key, "sent, then the process stopped before its answer was journaled");
  const all = [...requests.values()];
  return {
    requests,
    ambiguous,
    folder: totals(all, ambiguous, estimate),
    thisRun: totals(
      all.filter((r) => r.thisRun),
      ambiguous.filter((a) => a.thisRun),
      estimate,
    ),
  };
}
