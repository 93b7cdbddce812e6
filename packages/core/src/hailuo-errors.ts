import {
  CancelledError,
  HailuoError,
  InputValidationError,
  TimeoutError,
  redactSecrets,
  type FieldProblem,
  type HailuoErrorOptions,
} from "@hailuo/shared";

/** The prompt was refused by the model's moderation. Retrying the same prompt never helps. */
export class ContentPolicyError extends HailuoError {
  constructor(message: string, options: HailuoErrorOptions = {}) {
    super("content_policy", message, { ...options, retryable: false });
  }
}

/** The key is missing, wrong or lacks access. Stops a whole run: every other item would fail too. */
export class AuthError extends HailuoError {
  constructor(message: string, options: HailuoErrorOptions = {}) {
    super("auth", message, { ...options, retryable: false });
  }
}

/** fal asked us to slow down (429) even after the client's own retries. */
export class RateLimitError extends HailuoError {
  constructor(message: string, options: HailuoErrorOptions = {}) {
    super("rate_limited", message, { retryable: true, ...options });
  }
}

/** fal answered with a 5xx that its client's retries did not get past. */
export class ServerError extends HailuoError {
  constructor(message: string, options: HailuoErrorOptions = {}) {
    super("server", message, { retryable: true, ...options });
  }
}

/** The connection failed before any answer arrived. */
export class NetworkError extends HailuoError {
  constructor(message: string, options: HailuoErrorOptions = {}) {
    super("network", message, { retryable: true, ...options });
  }
}

/**
 * A submit whose answer was lost: fal may or may not have queued (and billed) it.
 * Retryable, but every retry may be a second charge, so callers must record it.
 */
export class SubmitAmbiguousError extends HailuoError {
  constructor(message: string, options: HailuoErrorOptions = {}) {
    super("submit_ambiguous", message, { retryable: true, ...options });
  }
}

/** The request finished COMPLETED but with an error instead of a video. A new submit may succeed. */
export class GenerationFailedError extends HailuoError {
  constructor(message: string, options: HailuoErrorOptions = {}) {
    super("generation_failed", message, { retryable: true, ...options });
  }
}

/** A download was cut short or did not match the announced size. */
export class DownloadError extends HailuoError {
  constructor(message: string, options: HailuoErrorOptions = {}) {
    super("download", message, { retryable: true, ...options });
  }
}

/** A webhook's signature, timestamp or headers did not check out. */
export class WebhookVerificationError extends HailuoError {
  constructor(message: string, options: HailuoErrorOptions = {}) {
    super("webhook_invalid", message, { ...options, retryable: false });
  }
}

/** The client is misconfigured (no key, bad URL). */
export class ConfigError extends HailuoError {
  constructor(message: string, options: HailuoErrorOptions = {}) {
    super("config", message, { ...options, retryable: false });
  }
}

interface FalApiErrorLike {
  name: string;
  message: string;
  status: number;
  body?: unknown;
  requestId?: string;
  timeoutType?: string;
}

function isFalApiError(error: unknown): error is FalApiErrorLike {
  return (
    error instanceof Error &&
    (error.name === "ApiError" || error.name === "ValidationError") &&
    typeof (error as { status?: unknown }).status === "number"
  );
}

function detailText(body: unknown): string | undefined {
  if (!body || typeof body !== "object") return undefined;
  const detail = (body as { detail?: unknown }).detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail))
    return detail
      .map((d) =>
        d && typeof d === "object" ? String((d as { msg?: unknown }).msg ?? "") : String(d),
      )
      .join("; ");
  return undefined;
}

function fieldProblems(body: unknown): { problems: FieldProblem[]; policy: boolean } {
  const detail =
    body && typeof body === "object" ? (body as { detail?: unknown }).detail : undefined;
  if (!Array.isArray(detail))
    return {
      problems: [{ field: "", message: detailText(body) ?? "rejected by the server" }],
      policy: false,
    };
  let policy = false;
  const problems = detail.map((d: { loc?: unknown[]; msg?: string; type?: string }) => {
    if (d?.type === "content_policy_violation") policy = true;
    const loc = Array.isArray(d?.loc) ? d.loc.filter((p) => p !== "body").join(".") : "";
    return { field: loc, message: String(d?.msg ?? "invalid") };
  });
  return { problems, policy };
}

/** Where in a call an error happened; helps pick the right class and message. */
export interface ErrorContext {
  operation: "submit" | "status" | "stream" | "result" | "cancel" | "download" | "upload";
  requestId?: string;
  /** Seconds from a Retry-After header seen during this call. */
  retryAfterS?: number;
  /** fal's `X-Fal-Retryable` header, when the failed answer carried one. */
  falRetryable?: boolean;
}

/**
 * Maps anything `@fal-ai/client` or fetch throws into our typed errors. The only place that
 * knows fal's error shapes; messages are scrubbed of credentials.
 */
export function mapFalError(error: unknown, ctx: ErrorContext): HailuoError {
  if (error instanceof HailuoError) return error;
  const base = { cause: error, requestId: ctx.requestId };
  const op = ctx.operation;
  if (error instanceof Error && (error.name === "AbortError" || error.name === "TimeoutError")) {
    return new CancelledError(`${op} cancelled`, base);
  }
  if (isFalApiError(error)) {
    const requestId = error.requestId || ctx.requestId;
    const opts = { ...base, requestId, details: { status: error.status, operation: op } };
    const text = redactSecrets(detailText(error.body) ?? error.message);
    const s = error.status;
    if (s === 422) {
      const { problems, policy } = fieldProblems(error.body);
      if (policy)
        return new ContentPolicyError(
          `content policy violation: ${redactSecrets(problems.map((p) => p.message).join("; "))}`,
          opts,
        );
      return new InputValidationError(
        problems.map((p) => ({ ...p, message: redactSecrets(p.message) })),
        opts,
      );
    }
    if (s === 401 || s === 403)
      return new AuthError(`fal rejected the credentials (${s}) during ${op}: ${text}`, opts);
    if (s === 429)
      return new RateLimitError(`rate limited (429) during ${op}: ${text}`, {
        ...opts,
        retryAfterS: ctx.retryAfterS,
      });
    if (s === 504 && error.timeoutType === "user")
      return new TimeoutError(`fal's start timeout expired during ${op}`, {
        ...opts,
        retryable: false,
      });
    // fal cancelled the request (client_cancelled): nothing billed; a new submit may be made.
    if (s === 499)
      return new HailuoError(
        "request_cancelled",
        `request ${requestId ?? ""} was cancelled on fal: ${text}`,
        { ...opts, retryable: true },
      );
    // X-Fal-Retryable, when fal sends it, says whether the same call can succeed (docs, request errors).
    if (s >= 500)
      return new ServerError(`fal server error ${s} during ${op}: ${text}`, {
        ...opts,
        retryAfterS: ctx.retryAfterS,
        ...(ctx.falRetryable === undefined ? {} : { retryable: ctx.falRetryable }),
      });
    if (s === 404)
      return new HailuoError("not_found", `${op}: request not found (404): ${text}`, opts);
    return new HailuoError("http", `${op} failed with HTTP ${s}: ${text}`, opts);
  }
  const message = redactSecrets(error instanceof Error ? error.message : String(error));
  return new NetworkError(`network error during ${op}: ${message}`, base);
}
