import { describe, expect, it } from "vitest";
import type { StoredRecord } from "./journal-store.js";
import { ledgerOf } from "./ledger.js";
import { replayJournal } from "./run-state.js";

// Money is derived from the generations' states, which the one reducer builds: these journals,
// replayed, must give these totals (the run being reported starts at `thisRunFrom`).

const h = (requestId: string) => ({ endpoint: "e", requestId, submittedAt: "t" });
const sent = (key: string, at: string, attempt = 1): StoredRecord => ({
  t: "submitting",
  key,
  scene: key,
  take: 1,
  attempt,
  usd: 0.27,
  at,
});
const clip = { file: "clips/x.mp4", bytes: 1, sha256: "s", durationS: 6, width: 1, height: 1 };

describe("ledgerOf", () => {
  it.each<[string, StoredRecord[], number, object, object?]>([
    [
      "a lost answer, then a submit that bills: one billed, one possible charge",
      [
        sent("a", "1"),
        { t: "ambiguous", key: "a", message: "502", at: "2" },
        sent("a", "3", 2),
        { t: "submitted", key: "a", handle: h("r1"), at: "4" },
        {
          t: "completed",
          key: "a",
          requestId: "r1",
          videoUrl: "u",
          seconds: 6,
          usd: 0.27,
          at: "5",
        },
      ],
      0,
      {
        billedUsd: 0.27,
        billedSeconds: 6,
        billedRequests: 1,
        possibleDoubleChargeUsd: 0.27,
        ambiguousSubmits: 1,
      },
    ],
    [
      "a lost answer found on fal: no possible charge, one reconciled",
      [
        sent("a", "1"),
        { t: "ambiguous", key: "a", message: "502", at: "2" },
        { t: "reconciled", key: "a", handle: h("r1"), at: "3" },
        {
          t: "completed",
          key: "a",
          requestId: "r1",
          videoUrl: "u",
          seconds: 6,
          usd: 0.27,
          at: "4",
        },
      ],
      0,
      { billedUsd: 0.27, possibleDoubleChargeUsd: 0, reconciled: 1 },
    ],
    [
      "a crash between send and answer: a possible charge",
      [sent("a", "1")],
      0,
      { billedUsd: 0, possibleDoubleChargeUsd: 0.27, ambiguousSubmits: 1 },
    ],
    [
      "a saved clip whose completed line was lost: billed at the plan's price",
      [
        sent("a", "1"),
        { t: "submitted", key: "a", handle: h("r1"), at: "2" },
        { t: "done", key: "a", requestId: "r1", ...clip, at: "3" },
      ],
      0,
      { billedUsd: 0.3, billedSeconds: 6, possibleDoubleChargeUsd: 0 },
    ],
    [
      "a failed generation and a cancelled one bill nothing; a live one is in flight",
      [
        sent("a", "1"),
        { t: "submitted", key: "a", handle: h("r1"), at: "2" },
        { t: "ended", key: "a", requestId: "r1", code: "generation_failed", at: "3" },
        sent("b", "4"),
        { t: "submitted", key: "b", handle: h("r2"), at: "5" },
        { t: "ended", key: "b", requestId: "r2", code: "request_cancelled", at: "6" },
        sent("c", "7"),
        { t: "submitted", key: "c", handle: h("r3"), at: "8" },
      ],
      0,
      { billedUsd: 0, inFlightUsd: 0.27, possibleDoubleChargeUsd: 0 },
    ],
    [
      "an earlier run's bill is the folder's, not this run's",
      [
        sent("a", "1"),
        {
          t: "completed",
          key: "a",
          requestId: "r1",
          videoUrl: "u",
          seconds: 6,
          usd: 0.27,
          at: "2",
        },
        sent("b", "3"),
        {
          t: "completed",
          key: "b",
          requestId: "r2",
          videoUrl: "u",
          seconds: 10,
          usd: 0.45,
          at: "4",
        },
      ],
      2,
      { billedUsd: 0.72, billedRequests: 2 },
      { billedUsd: 0.45, billedRequests: 1 },
    ],
    [
      // estimate() prices by the current plan (0.3 here): the request is priced as submitted.
      "a request still running is in flight at the price its submit was journaled with",
      [sent("a", "1"), { t: "submitted", key: "a", handle: h("r1"), at: "2" }],
      0,
      { billedUsd: 0, inFlightUsd: 0.27 },
    ],
  ])("%s", (_what, records, thisRunFrom, folder, thisRun) => {
    const states = replayJournal(records, new Map(), { thisRun: (_r, i) => i >= thisRunFrom });
    const ledger = ledgerOf(states.values(), { estimate: () => 0.3, secondsOf: () => 6 });
    expect(ledger.folder).toMatchObject(folder);
    if (thisRun) expect(ledger.thisRun).toMatchObject(thisRun);
  });
});
