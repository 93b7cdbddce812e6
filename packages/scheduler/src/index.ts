export {
  parseJobDefinition,
  loadJobDefinition,
  loadJobs,
  manifestForRun,
  nextFireTimes,
  type JobDefinition,
  type MissedPolicy,
} from "./job-definition.js";
export {
  createScheduler,
  pruneRuns,
  runStamp,
  spentOnDay,
  type Scheduler,
  type SchedulerOptions,
  type JobExecutor,
  type RunOutcome,
} from "./scheduler.js";
export {
  appendHistory,
  readHistory,
  readLastFire,
  writeLastFire,
  historyPath,
  type HistoryRecord,
} from "./history.js";
export { createRunExecutor } from "./run-executor.js";
