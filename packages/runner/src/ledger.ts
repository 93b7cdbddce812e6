import { sumUsd } from "./plan.js";
import type { ItemRequest, ItemState, LostSubmit } from "./run-state.js";

export type { RequestFate } from "./run-state.js";

/** One request fal answered with an id, priced. */
export interface LedgerRequest extends ItemRequest {
  key: string;
  usd: number;
  seconds: number;
}

/** A submit whose answer was never seen: fal may have queued and billed it with no id known to us. */
export interface AmbiguousSubmit extends LostSubmit {
  key: string;
  /** What it would cost if fal ran it. */
  usd: number;
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

/** The money record of a run folder. */
export interface Ledger {
  requests: LedgerRequest[];
  /** Oldest first. */
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
    // Priced as submitted: a request of an input the manifest no longer asks for still costs.
    inFlightUsd: sumUsd(
      requests.filter((r) => r.fate === "unknown").map((r) => r.quotedUsd ?? estimate(r.key)),
    ),
    reconciled: requests.filter((r) => r.reconciled).length,
  };
}

/**
 * The ledger of a run folder, derived from its generations' states (the one reducer,
 * `applyRecord`, keeps each request's fate and each lost submit). Pure. `estimate` prices a key
 * (and `secondsOf` gives its billed length) where a record lacked it: journals written before
 * prices were journaled, and requests known only from an outcome whose own line was lost.
 */
export function ledgerOf(
  states: Iterable<ItemState>,
  options: { estimate?: (key: string) => number; secondsOf?: (key: string) => number } = {},
): Ledger {
  const { estimate = () => 0, secondsOf = () => 0 } = options;
  const requests: LedgerRequest[] = [];
  const ambiguous: AmbiguousSubmit[] = [];
  for (const s of states) {
    for (const q of s.requests) {
      const billed = q.fate === "billed";
      const usd = billed ? (q.usd ?? estimate(s.key)) : 0;
      requests.push({
        ...q,
        key: s.key,
        usd,
        seconds: billed ? (q.seconds ?? secondsOf(s.key)) : 0,
      });
    }
    for (const a of s.lost) ambiguous.push({ ...a, key: s.key, usd: a.usd ?? estimate(s.key) });
  }
  ambiguous.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  return {
    requests,
    ambiguous,
    folder: totals(requests, ambiguous, estimate),
    thisRun: totals(
      requests.filter((r) => r.thisRun),
      ambiguous.filter((a) => a.thisRun),
      estimate,
    ),
  };
}
