export { QUEUES, openRedis, removeAllQueues, type QueueConnection } from "./connection.js";
export {
  enqueueRun,
  runIdFor,
  type EnqueueOptions,
  type EnqueuedRun,
  type GenerateJobData,
  type AssembleJobData,
} from "./run-flow.js";
export { budgetKey, runBudget, type RunBudget } from "./run-budget.js";
export { startWorker, type WorkerOptions, type RunningWorker } from "./worker.js";
export {
  upsertSchedules,
  processScheduledFire,
  type ScheduleJobData,
  type FireResult,
  type FireOptions,
} from "./schedules.js";
export {
  claimJobRun,
  guardKeys,
  jobDaySpendUsd,
  releaseJobRun,
  settleJobRun,
  type ClaimOptions,
  type JobRunClaim,
  type JobRunHolder,
} from "./job-guard.js";
export {
  listQueue,
  cancelRun,
  removeSchedule,
  type QueuedRun,
  type QueuedSchedule,
  type CancelResult,
} from "./admin.js";
export { openRunStore, createRunStores, runAddress, type RunStores } from "./run-stores.js";
export { materializeRun, keepOutputs, createRunMirror, type RunMirror } from "./bucket-run.js";
