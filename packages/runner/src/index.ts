// The runner's public face: run a manifest, read what a run folder says, and the one entry for queue workers.
export {
  runManifest,
  quoteRunPrices,
  type RunOptions,
  type RunPrices,
  type RunResult,
} from "./runner.js";
export type { RunEvent, ItemPhase } from "./events.js";
export {
  planRun,
  createPlanner,
  planEndpoints,
  sumUsd,
  type PlanItem,
  type PlanInput,
  type PlanContext,
  type Planner,
  type LastFrameSource,
} from "./plan.js";
export { chooseTakes } from "./chosen-take.js";
export { previewRun, type RunPreview, type Regeneration } from "./work-plan.js";
export { ImageChangedError } from "./image-inputs.js";
export { uploadsOf, type JournaledUpload } from "./run-state.js";
export { uploadRunImages } from "./image-inputs.js";
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
  type RunAt,
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
  type ItemJobControls,
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
export { unrecordedClips } from "./witnesses.js";
