// The runner's public face: run a manifest, read what a run folder says, and the one entry for queue workers.
export { runManifest, type RunOptions, type RunResult } from "./runner.js";
export type { RunEvent, ItemPhase } from "./events.js";
export { planRun, sumUsd, type PlanItem } from "./plan.js";
export { previewRun, type RunPreview } from "./work-plan.js";
export { readRunReport, buildReport } from "./run-report.js";
export type { ItemReport, ReportCaveat, RunReport } from "./report.js";
export type { MoneyTotals, RequestFate, Ledger } from "./ledger.js";
export { ledgerOf } from "./ledger.js";
export {
  readRunManifest,
  readRunFile,
  writeRunFile,
  mustBeRunFolder,
  WrongBackendError,
  type Backend,
  type RunFile,
} from "./run-folder.js";
export {
  JournalStore,
  readJournal,
  journalPath,
  type JournalDamage,
  type JournalRead,
  type JournalRecord,
  type StoredRecord,
  type ClipFacts,
} from "./journal-store.js";
export {
  acquireRunLock,
  runLockHeld,
  RunLockedError,
  type RunLockOptions,
  type RunStore,
} from "@hailuo/store";
export {
  insideDir,
  checkClips,
  recordChangedClips,
  clipsChangedError,
  describeStanding,
  downloadIdleTimeoutMs,
  type ClipCheck,
  type ClipStanding,
  type CheckClipsOptions,
} from "./clip-file.js";
export { AnswersLostError, BudgetError, PriceUnknownError } from "./item-context.js";
export { PreflightError, DISK_BYTES_PER_SECOND } from "./preflight.js";
export {
  createItemWorker,
  type ItemWorker,
  type ItemWorkerOptions,
  type WorkerItemResult,
} from "./item-worker.js";
export {
  readPicks,
  writePick,
  chosenTakes,
  carryRerolls,
  withRerolls,
  quoteReroll,
  type PicksFile,
  type RerollQuote,
} from "./picks.js";
