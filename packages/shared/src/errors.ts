/**
 * Every error code the pipeline uses: programs branch on these, so they are a closed union
 * (adding one is a deliberate change here, not a string typed somewhere else).
 */
export const ERROR_CODES = [
  // fal and the network, mapped at the core boundary
  "validation",
  "content_policy",
  "auth",
  "rate_limited",
  "server",
  "network",
  "unreachable",
  "timeout",
  "cancelled",
  "generation_failed",
  "request_cancelled",
  "platform_unavailable",
  "submit_ambiguous",
  "answers_lost",
  "price_unknown",
  "not_found",
  "http",
  "config",
  // our side
  "download",
  "download_stalled",
  "clip_changed",
  "clip_unrecoverable",
  "disk_full",
  "unwritable",
  "verify",
  "webhook_invalid",
  "budget",
  "locked",
  "wrong_backend",
  "preflight",
  "manifest",
  "usage",
  "not_a_run",
  "declined",
  "unsafe_path",
  "ffmpeg_missing",
  "ffmpeg_failed",
  "not_video",
  "assemble_failed",
  "thumbnail_failed",
  "redis",
  "store",
  "internal",
] as const;

/** A stable error code (the README lists each; a test holds them together). */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Options every pipeline error accepts on top of its message. */
export interface HailuoErrorOptions {
  /** The underlying error, kept for `--debug` output. */
  cause?: unknown;
  /** Whether trying the same operation again may succeed. */
  retryable?: boolean;
  /** Seconds the server asked us to wait before trying again (Retry-After). */
  retryAfterS?: number;
  /** The fal request id this error belongs to, when known. */
  requestId?: string;
  /** Extra machine-readable details (field problems, HTTP status...). */
  details?: Record<string, unknown>;
}

/**
 * Base class of every error the pipeline throws on purpose: a stable `code` for programs,
 * a `retryable` flag for retry loops, and a message for people.
 */
export class HailuoError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly retryAfterS: number | undefined;
  readonly requestId: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: HailuoErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.retryAfterS = options.retryAfterS;
    this.requestId = options.requestId;
    this.details = options.details;
  }

  /** A JSON-safe form for journals and reports (no stack, no cause chain). */
  toJSON(): { code: ErrorCode; message: string; retryable: boolean; requestId?: string } {
    return {
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      ...(this.requestId ? { requestId: this.requestId } : {}),
    };
  }
}

/** One problem found while validating input: where, and what is wrong. */
export interface FieldProblem {
  /** The field path, e.g. `prompt` or `scenes[3].duration`. */
  field: string;
  message: string;
  /** Source file, when the input came from one. */
  file?: string;
  line?: number;
  column?: number;
}

/** Formats a problem as `file:line:col: field: message` (parts omitted when unknown). */
export function formatProblem(p: FieldProblem): string {
  const where = p.file
    ? `${p.file}${p.line ? `:${p.line}${p.column ? `:${p.column}` : ""}` : ""}: `
    : "";
  return `${where}${p.field ? `${p.field}: ` : ""}${p.message}`;
}

/** Input was rejected before (or by) the server; lists every problem at once. Never retryable. */
export class InputValidationError extends HailuoError {
  readonly problems: FieldProblem[];
  constructor(problems: FieldProblem[], options: Omit<HailuoErrorOptions, "retryable"> = {}) {
    super(
      "validation",
      `invalid input:\n${problems.map((p) => `  - ${formatProblem(p)}`).join("\n")}`,
      { ...options, retryable: false, details: { problems } },
    );
    this.problems = problems;
  }
}

/** The operation was cancelled through its AbortSignal. Never retryable. */
export class CancelledError extends HailuoError {
  constructor(message = "operation cancelled", options: HailuoErrorOptions = {}) {
    super("cancelled", message, { ...options, retryable: false });
  }
}

/** A deadline passed. Retryable: the work itself may still succeed on another try. */
export class TimeoutError extends HailuoError {
  constructor(message: string, options: HailuoErrorOptions = {}) {
    super("timeout", message, { retryable: true, ...options });
  }
}

/** True for a HailuoError marked retryable; unknown errors are not retried. */
export function isRetryable(error: unknown): boolean {
  return error instanceof HailuoError && error.retryable;
}

/** Turns an abort reason into a CancelledError unless it already is a HailuoError. */
export function abortError(signal: AbortSignal | undefined): HailuoError {
  const reason: unknown = signal?.reason;
  if (reason instanceof HailuoError) return reason;
  return new CancelledError(
    reason instanceof Error && reason.message ? reason.message : "operation cancelled",
  );
}
