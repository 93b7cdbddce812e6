export { planRun, inputKey, sumUsd, type PlanItem } from "./plan.js";
export { JournalStore, readJournal, type JournalRecord, type StoredRecord, type ClipFacts } from "./journal-store.js";
export { replayJournal, type ItemState } from "./run-state.js";
export { runManifest, readRunManifest, buildReport, clipFileName, insideDir, BudgetError, VerifyError, type RunOptions, type RunResult } from "./runner.js";
export { writeReports, neutraliseCell, type ItemReport, type RunReport } from "./report.js";
export { acquireRunLock, RunLockedError } from "./run-lock.js";
export type { RunEvent, ItemPhase } from "./events.js";
export { runMediaStage, makeThumbnails, assembleFilm, currentReport, type MediaStageOptions, type MediaStageResult } from "./media-stage.js";
export { renderRunPage, escapeHtml, type PageMedia } from "./report-html.js";
