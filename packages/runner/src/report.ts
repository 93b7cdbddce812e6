import type { VideoInfo } from "@hailuo/media";
import { join } from "node:path";
import { stringify } from "csv-stringify/sync";
import { atomicWrite } from "@hailuo/shared";
import type { Backend } from "./run-folder.js";

/**
 * What a report's amounts are: `billed`, what fal charged (or a folder that does not record where
 * it ran, as reports always read); `emulated`, what an emulator counted at fal's price, nothing billed.
 */
export type ReportAmounts = "billed" | "emulated";

/** The amounts of requests sent to a backend: only fal bills. */
export function amountsOf(backend: Backend | undefined): ReportAmounts {
  return backend && backend.kind !== "fal" ? "emulated" : "billed";
}

/** One row of the run report: a scene's take. */
export interface ItemReport {
  scene: string;
  take: number;
  key: string;
  status: "done" | "cached" | "failed" | "interrupted" | "pending";
  /** Paid for but not saved (disk full, download failed): resume downloads it, never pays again. */
  unsaved?: boolean;
  requestId?: string;
  /** Every request id submitted for this generation. */
  requestIds: string[];
  attempts: number;
  /** Length of the clip in seconds (probed). */
  seconds?: number;
  /** What fal billed for this input in this folder (every successful request, once each). */
  costUsd: number;
  /** Submits whose answer was lost: fal may have billed them with no clip to show. */
  ambiguousSubmits: number;
  possibleDoubleChargeUsd: number;
  /** Relative to the run folder. */
  file?: string;
  /** The clip's probe facts from the journal (size and timestamp checked by `clipFacts`). */
  video?: VideoInfo & { bytes: number };
  prompt: string;
  duration: string;
  error?: string;
  errorCode?: string;
  /** Why this row's amounts cannot be vouched for (a damaged journal line names it, an unverified price). */
  caveat?: string;
  /** Set when another scene has the same input and this row reuses its clip. */
  sameAs?: string;
  /**
   * Set on a continuing scene's take whose clip was made from another first frame than its
   * source's chosen take gives now (another pick upstream): `file` is that clip, kept for the film
   * until `hailuo run` makes it anew (nothing regenerates without a command). Says why.
   */
  stale?: string;
  /** This take is the one the film uses for its scene (picks.json, a re-roll, `pick:`, or the first finished). */
  chosen?: boolean;
}

/** Something the report's amounts cannot vouch for. */
export interface ReportCaveat {
  kind: "journal_damaged" | "price_unverified" | "clip_recovered" | "clip_unaccounted";
  message: string;
  /** The journal line, for `journal_damaged`. */
  line?: number;
  /** The scene-take it concerns, when known; absent: the folder's totals. */
  scene?: string;
  take?: number;
}

/** The whole report as written to report.json. */
export interface RunReport {
  name: string;
  manifest: string;
  runDir: string;
  generatedAt: string;
  /**
   * Whether the amounts below were billed by fal or only emulated (run.json's backend, given to
   * `buildReport`); a folder that does not record its backend reads "billed", as reports always did.
   */
  amounts?: ReportAmounts;
  totals: {
    items: number;
    done: number;
    cached: number;
    failed: number;
    interrupted: number;
    pending: number;
    /** Items paid for whose clip is not on disk yet (resume downloads them). */
    unsaved: number;
    /** What fal billed for every request ever made into this folder, superseded takes included. */
    billedUsd: number;
    billedSeconds: number;
    billedRequests: number;
    /** What fal billed for requests this run submitted. */
    thisRunBilledUsd: number;
    /** Submits whose answer was lost, folder-wide: each may have been billed on top of `billedUsd`. */
    possibleDoubleChargeUsd: number;
    thisRunPossibleDoubleChargeUsd: number;
    /** Requests still running on fal: billed only if they end with a video. */
    inFlightUsd: number;
    /** Scene-takes this run took from clips the folder already had (nothing billed). */
    reusedClips: number;
    /** Lost submits found on fal's request list and re-attached (not paid for twice). */
    reconciledSubmits: number;
  };
  /**
   * What the amounts above cannot vouch for, and why: a price fal did not confirm, journal lines
   * that are damaged. Empty when every amount is the journal's record at a confirmed price.
   */
  caveats: ReportCaveat[];
  /** Every submit whose answer was never seen, with the request id where one is known. */
  ambiguousSubmits: {
    scene?: string;
    take?: number;
    requestId?: string;
    usd: number;
    reason: string;
  }[];
  items: ItemReport[];
}

/**
 * Makes a cell safe to open in a spreadsheet: text starting with = + - @ or a control character
 * would run as a formula, so it gets a leading apostrophe.
 */
export function neutraliseCell(value: unknown): string {
  const s = value === undefined || value === null ? "" : String(value);
  return /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
}

const COLUMNS = [
  "scene",
  "take",
  "status",
  "request_id",
  "attempts",
  "seconds",
  "cost_usd",
  "possible_double_charge_usd",
  "file",
  "error",
  "prompt",
] as const;

/**
 * Writes report.json and report.csv atomically (temp file + rename). Both say whether the amounts
 * were billed: report.json in `amounts`, report.csv, for an emulated run only, in a last column.
 */
export async function writeReports(runDir: string, report: RunReport): Promise<void> {
  const amounts = report.amounts ?? "billed";
  // A billed run's CSV stays as it always was; an emulated one says so on every row.
  const emulated = amounts === "emulated";
  const rows = report.items.map((i) =>
    [
      i.scene,
      i.take,
      i.status,
      i.requestId,
      i.attempts,
      i.seconds?.toFixed(2),
      i.costUsd.toFixed(3),
      i.possibleDoubleChargeUsd.toFixed(3),
      i.file,
      i.error,
      i.prompt,
      ...(emulated ? ["no (emulated at fal's price)"] : []),
    ].map(neutraliseCell),
  );
  const csv = stringify([[...COLUMNS, ...(emulated ? ["billed"] : [])], ...rows]);
  // Probe facts stay in the journal (the media stage reads them there): report.json stays small.
  // (Dropped from each item rather than by a replacer: one call per value costs 10,000-clip runs.)
  const items = report.items.map(({ video: _inJournal, ...item }) => item);
  await Promise.all([
    atomicWrite(
      join(runDir, "report.json"),
      `${JSON.stringify({ ...report, amounts, items }, null, 2)}\n`,
    ),
    atomicWrite(join(runDir, "report.csv"), csv),
  ]);
}
