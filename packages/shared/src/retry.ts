import { HailuoError, abortError, isRetryable, type ErrorCode } from "./errors.js";
import { systemClock, type Clock } from "./clock.js";

/** How `retry` spaces and bounds its attempts. */
export interface RetryOptions {
  /** Further attempts after the first. @default 3 */
  retries?: number;
  /** Backoff base in ms; attempt n waits a random time in [0, min(max, base·2^n)]. @default 1000 */
  baseDelayMs?: number;
  /** Upper bound of one wait in ms. @default 30000 */
  maxDelayMs?: number;
  /** Upper bound of a server's Retry-After in ms. @default 60000 */
  maxRetryAfterMs?: number;
  /** Decides whether an error is worth another attempt. @default isRetryable */
  shouldRetry?: (error: unknown, attempt: number) => boolean;
  /** Called before each wait, so callers can journal and report every retry. */
  onRetry?: (info: { error: unknown; attempt: number; delayMs: number }) => void;
  signal?: AbortSignal;
  clock?: Clock;
  /** Random source in [0, 1); injectable for tests. @default Math.random */
  random?: () => number;
}

/** The last error of a retried operation, with every attempt's error kept. */
export class RetryExhaustedError extends HailuoError {
  readonly errors: unknown[];
  constructor(errors: unknown[]) {
    const last = errors[errors.length - 1];
    const lastCode: ErrorCode = last instanceof HailuoError ? last.code : "internal";
    super(
      lastCode,
      `${errors.length} attempt${errors.length === 1 ? "" : "s"} failed; last: ${last instanceof Error ? last.message : String(last)}`,
      {
        cause: last,
        retryable: false,
        requestId: last instanceof HailuoError ? last.requestId : undefined,
      },
    );
    this.errors = errors;
  }
}

/** The longest Retry-After we obey; a server asking for more gets this (vercel/ai caps it at 60 s too). */
export const MAX_RETRY_AFTER_MS = 60_000;

/**
 * Full-jitter exponential backoff delay for attempt `n` (0-based), floored by Retry-After, which
 * is itself capped at `maxRetryAfterMs` so one odd header cannot park a run for hours.
 */
export function backoffDelayMs(
  attempt: number,
  error: unknown,
  {
    baseDelayMs = 1000,
    maxDelayMs = 30_000,
    maxRetryAfterMs = MAX_RETRY_AFTER_MS,
    random = Math.random,
  }: Pick<RetryOptions, "baseDelayMs" | "maxDelayMs" | "maxRetryAfterMs" | "random"> = {},
): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** attempt);
  const jittered = Math.floor(random() * ceiling);
  const retryAfterMs =
    error instanceof HailuoError && error.retryAfterS !== undefined
      ? Math.min(maxRetryAfterMs, error.retryAfterS * 1000)
      : 0;
  return Math.max(jittered, retryAfterMs);
}

/**
 * Runs `fn` until it succeeds, fails with a non-retryable error, or runs out of attempts.
 * Never retries a cancellation; the final failure keeps every attempt's error.
 */
export async function retry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const { retries = 3, shouldRetry = isRetryable, onRetry, signal, clock = systemClock } = options;
  const errors: unknown[] = [];
  for (let attempt = 0; ; attempt++) {
    if (signal?.aborted) throw abortError(signal);
    try {
      return await fn(attempt);
    } catch (error) {
      errors.push(error);
      if (signal?.aborted) throw abortError(signal);
      if (attempt >= retries || !shouldRetry(error, attempt)) {
        if (errors.length === 1) throw error;
        throw new RetryExhaustedError(errors);
      }
      const delayMs = backoffDelayMs(attempt, error, options);
      onRetry?.({ error, attempt, delayMs });
      await clock.sleep(delayMs, signal);
    }
  }
}
