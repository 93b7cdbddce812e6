import { AsyncLocalStorage } from "node:async_hooks";
import { redactSecrets, type HailuoError } from "@hailuo/shared";
import type { HttpRetryInfo } from "./client-types.js";
import {
  NetworkError,
  RateLimitError,
  SubmitAmbiguousError,
  mapFalError,
  type ErrorContext,
} from "./hailuo-errors.js";

/** What one logical call (with the fal client's own retries inside) has seen. */
export interface CallContext {
  operation: ErrorContext["operation"];
  requestId?: string;
  attempts: number;
  /** The request (method and URL) the attempts are of. */
  request?: string;
  retryAfterS?: number;
  falRetryable?: boolean;
  lastStatus?: number;
}

// Connection errors that prove the request never left this machine: safe to send again.
const NOT_SENT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
]);

function errorCodes(error: unknown): string[] {
  const codes: string[] = [];
  for (
    let e: unknown = error, i = 0;
    e && typeof e === "object" && i < 6;
    e = (e as { cause?: unknown }).cause, i++
  ) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
  }
  return codes;
}

function hostOf(input: Parameters<typeof globalThis.fetch>[0]): string {
  try {
    return new URL(
      typeof input === "string" ? input : input instanceof URL ? input.href : input.url,
    ).host;
  } catch {
    return "fal";
  }
}

/** A submit error after which sending again cannot pay twice: fal refused it, or it never left. */
export function isSafeToResubmit(error: unknown): boolean {
  const e = error as HailuoError;
  return e?.code === "rate_limited" || (e?.code === "network" && e.details?.notSent === true);
}

function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const s = Number(value);
  if (Number.isFinite(s)) return Math.max(0, s);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, (at - Date.now()) / 1000) : undefined;
}

/** The fetch the fal client uses, and `call` to run one operation through it with its errors mapped. */
export interface FalTransport {
  fetch: typeof globalThis.fetch;
  call<T>(
    operation: CallContext["operation"],
    requestId: string | undefined,
    fn: () => Promise<T>,
  ): Promise<T>;
}

/**
 * Wraps fetch so every attempt the fal client makes is seen: retries are reported, Retry-After
 * and X-Fal-Retryable are kept for the error, and submits are never re-sent by the fal client
 * (every submit failure surfaces as one of our errors, which its retry loop does not retry).
 */
export function createFalTransport(
  baseFetch: typeof globalThis.fetch,
  onHttpRetry?: (info: HttpRetryInfo) => void,
): FalTransport {
  const calls = new AsyncLocalStorage<CallContext>();
  const trackingFetch: typeof globalThis.fetch = async (input, init) => {
    const ctx = calls.getStore();
    if (ctx) {
      // One operation may make several requests (an upload: initiate, then PUT the bytes): only
      // the same request sent again is a retry.
      const request = `${init?.method ?? "GET"} ${String(input instanceof Request ? input.url : input)}`;
      if (ctx.request !== request) {
        ctx.request = request;
        ctx.attempts = 0;
      }
      ctx.attempts++;
      if (ctx.attempts > 1)
        onHttpRetry?.({
          operation: ctx.operation,
          attempt: ctx.attempts,
          requestId: ctx.requestId,
          status: ctx.lastStatus,
        });
    }
    let res: Response;
    try {
      res = await baseFetch(input, init);
    } catch (error) {
      const aborted =
        error instanceof Error && (error.name === "AbortError" || error.name === "TimeoutError");
      if (ctx?.operation !== "submit" || aborted) throw error;
      // Submits are retried by us alone (see submitOnce): every error thrown here is a HailuoError
      // with no transport-shaped cause, so the fal client's own loop never re-POSTs it.
      const codes = errorCodes(error);
      const reason = [error, (error as { cause?: unknown }).cause]
        .map((e) => (e instanceof Error ? e.message : ""))
        .filter(Boolean)
        .join(": ");
      // undici refuses the fetch standard's blocked ports before connecting: "bad port", no code.
      const blockedPort =
        (error as { cause?: { message?: unknown } }).cause?.message === "bad port";
      if (blockedPort || codes.some((c) => NOT_SENT_CODES.has(c))) {
        throw new NetworkError(
          `could not reach ${hostOf(input)} to submit (${reason}); nothing was sent`,
          { details: { codes, notSent: true } },
        );
      }
      throw new SubmitAmbiguousError(
        `the submit was sent but its answer was lost (${reason}); fal may have queued (and will bill) it`,
        { details: { codes } },
      );
    }
    if (ctx) {
      ctx.lastStatus = res.status;
      if (res.status === 429 || res.status >= 500)
        ctx.retryAfterS = parseRetryAfter(res.headers.get("retry-after"));
      const retryable = res.headers.get("x-fal-retryable");
      ctx.falRetryable = retryable === null ? undefined : retryable === "true";
    }
    if (ctx?.operation === "submit" && (res.status === 429 || res.status >= 500)) {
      const detail = redactSecrets((await res.text().catch(() => "")).slice(0, 300));
      // 429: fal refused before queueing, safe to send again. A 5xx may come from a gateway that
      // already forwarded the submit (fal queued it), so sending again could pay twice.
      if (res.status === 429)
        throw new RateLimitError(`rate limited (429) during submit: ${detail}`, {
          retryAfterS: ctx.retryAfterS,
          details: { status: 429, operation: "submit" },
        });
      throw new SubmitAmbiguousError(
        `fal answered HTTP ${res.status} to a submit (${detail}); a gateway may have forwarded it, so fal may have queued (and will bill) it`,
        {
          requestId: res.headers.get("x-fal-request-id") ?? undefined,
          details: { status: res.status },
        },
      );
    }
    return res;
  };

  async function call<T>(
    operation: CallContext["operation"],
    requestId: string | undefined,
    fn: () => Promise<T>,
  ): Promise<T> {
    const ctx: CallContext = { operation, requestId, attempts: 0 };
    try {
      return await calls.run(ctx, fn);
    } catch (error) {
      throw mapFalError(error, {
        operation,
        requestId,
        retryAfterS: ctx.retryAfterS,
        falRetryable: ctx.falRetryable,
      });
    }
  }

  return { fetch: trackingFetch, call };
}
