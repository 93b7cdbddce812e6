export {
  HailuoError,
  InputValidationError,
  CancelledError,
  TimeoutError,
  isRetryable,
  abortError,
  formatProblem,
  type HailuoErrorOptions,
  type FieldProblem,
} from "./errors.js";
export { delay, systemClock, createManualClock, type Clock } from "./clock.js";
export { retry, backoffDelayMs, RetryExhaustedError, type RetryOptions } from "./retry.js";
export { redactSecrets } from "./redact.js";
