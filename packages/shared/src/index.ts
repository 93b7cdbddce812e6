export {
  HailuoError,
  InputValidationError,
  CancelledError,
  TimeoutError,
  isRetryable,
  abortError,
  formatProblem,
  type HailuoErrorOptions,
  ERROR_CODES,
  type ErrorCode,
  type FieldProblem,
} from "./errors.js";
export { delay, systemClock, createManualClock, untilAborted, type Clock } from "./clock.js";
export {
  retry,
  backoffDelayMs,
  MAX_RETRY_AFTER_MS,
  RetryExhaustedError,
  type RetryOptions,
} from "./retry.js";
export { redactSecrets } from "./redact.js";
export {
  atomicWrite,
  syncDir,
  JsonlFile,
  readJsonl,
  readJsonlFrom,
  parseJsonl,
  parseNewLines,
  processAlive,
  removeDeadPidDirs,
  type BadLine,
  type JsonlRead,
} from "./files.js";
