import { AsyncLocalStorage } from "node:async_hooks";
import { createFalClient, type QueueStatus, type RequestMiddleware } from "@fal-ai/client";

type RequestConfig = Parameters<RequestMiddleware>[0];
import { RetryExhaustedError, TimeoutError, abortError, delay, redactSecrets, retry, type HailuoError } from "@hailuo/shared";
import {
  ConfigError,
  GenerationFailedError,
  NetworkError,
  RateLimitError,
  ServerError,
  SubmitAmbiguousError,
  mapFalError,
  type ErrorContext,
} from "./hailuo-errors.js";
import { createPlatformClient, type PlatformClient } from "./platform-api.js";
import { HAILUO_ENDPOINT, normalizeHailuoInput, type HailuoInput, type HailuoInputLike, type HailuoOutput } from "@hailuo/spec";

/** A submitted request, small and JSON-serialisable so it can be journaled before waiting. */
export interface HailuoHandle {
  endpoint: string;
  requestId: string;
  /** ISO time the submit was answered. */
  submittedAt: string;
}

/** One log line from the model's runner. */
export interface HailuoLog {
  message: string;
  level?: string;
  timestamp?: string;
}

/** A queue status in our own words; fal's `COMPLETED` with `error` keeps the error here. */
export interface HailuoStatus {
  state: "queued" | "in_progress" | "completed";
  requestId: string;
  queuePosition?: number;
  logs: HailuoLog[];
  /** Set when the request finished without a video. */
  error?: string;
  errorType?: string;
  inferenceTimeS?: number;
}

/** An HTTP attempt beyond the first that the fal client made on its own. */
export interface HttpRetryInfo {
  operation: ErrorContext["operation"];
  attempt: number;
  requestId?: string;
  status?: number;
}

/** Options of `createHailuoClient`. */
export interface HailuoClientOptions {
  /** fal key; @default process.env.FAL_KEY (or FAL_KEY_ID:FAL_KEY_SECRET); with an emulator, FAL_EMULATOR_KEY or a placeholder */
  credentials?: string;
  /** Base URL of a fal emulator; every fal host is redirected there. @default process.env.FAL_EMULATOR_URL */
  emulatorUrl?: string;
  /**
   * How requests reach the emulator: `host` rewrites URLs to `<emu>/__host/<host>/…`,
   * `proxy` uses the client's `proxyUrl` with `x-fal-target-url`. @default "host"
   */
  emulatorRouting?: "host" | "proxy";
  /** Transport, for tests or custom agents. @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
  /**
   * Called for every HTTP attempt the fal client retries by itself (submit, status and result
   * retry 429/5xx/network errors inside the client), so retries are visible, never silent.
   */
  onHttpRetry?: (info: HttpRetryInfo) => void;
  /** Resends of a submit that provably never queued (429, connection refused, DNS). @default 3 */
  submitRetries?: number;
  /** Backoff base of those resends; Retry-After (capped at 60 s) is a floor. @default 1000 */
  submitRetryBaseDelayMs?: number;
}

/** Options of `wait`. */
export interface WaitOptions {
  signal?: AbortSignal;
  /** Called on every status change (stream event or poll). */
  onUpdate?: (status: HailuoStatus) => void;
  /** Gives up after this long (the request keeps running on fal). */
  timeoutMs?: number;
  /** `stream` uses fal's SSE status stream (one connection per clip) and falls back to polling. @default "stream" */
  mode?: "stream" | "poll";
  /** First poll interval when polling; it grows ×1.25 up to `maxPollIntervalMs`. @default 1000 */
  pollIntervalMs?: number;
  /** @default 2000 */
  maxPollIntervalMs?: number;
}

/** The Hailuo endpoint as a small typed API; see `createHailuoClient`. */
export interface HailuoClient {
  /** True when requests go to an emulator rather than fal. */
  readonly usingEmulator: boolean;
  /** fal's Platform APIs (pricing, requests by endpoint) with the same key and transport. */
  readonly platform: PlatformClient;
  /** Validates, then queues one generation. Journal the handle before waiting on it. */
  submit(input: HailuoInputLike, options?: { signal?: AbortSignal; webhookUrl?: string }): Promise<HailuoHandle>;
  /** One status look-up (with logs when asked). */
  status(handle: HailuoHandle, options?: { signal?: AbortSignal; logs?: boolean }): Promise<HailuoStatus>;
  /** Waits for COMPLETED (success or error) and returns that final status. */
  wait(handle: HailuoHandle, options?: WaitOptions): Promise<HailuoStatus>;
  /** Fetches the output of a completed request. */
  result(handle: HailuoHandle, options?: { signal?: AbortSignal }): Promise<HailuoOutput>;
  /** Asks fal to cancel; says what fal answered. */
  cancel(handle: HailuoHandle, options?: { signal?: AbortSignal }): Promise<"cancellation_requested" | "already_completed" | "not_found">;
  /** Submit, wait and fetch in one call; a finished-with-error request throws a typed error. */
  generate(
    input: HailuoInputLike,
    options?: WaitOptions & { onEnqueue?: (handle: HailuoHandle) => void | Promise<void>; webhookUrl?: string },
  ): Promise<{ handle: HailuoHandle; status: HailuoStatus; output: HailuoOutput }>;
}

interface CallContext {
  operation: ErrorContext["operation"];
  requestId?: string;
  attempts: number;
  retryAfterS?: number;
  falRetryable?: boolean;
  lastStatus?: number;
}

// Connection errors that prove the request never left this machine: safe to send again.
const NOT_SENT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_CONNECT_TIMEOUT"]);

function errorCodes(error: unknown): string[] {
  const codes: string[] = [];
  for (let e: unknown = error, i = 0; e && typeof e === "object" && i < 6; e = (e as { cause?: unknown }).cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
  }
  return codes;
}

function hostOf(input: Parameters<typeof globalThis.fetch>[0]): string {
  try {
    return new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url).host;
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

function toStatus(raw: QueueStatus | Record<string, unknown>, requestId: string, logs: HailuoLog[] = []): HailuoStatus {
  const r = raw as Record<string, unknown>;
  const state = r.status === "COMPLETED" ? "completed" : r.status === "IN_PROGRESS" ? "in_progress" : "queued";
  const rawLogs = Array.isArray(r.logs) ? (r.logs as HailuoLog[]) : [];
  const status: HailuoStatus = {
    state,
    requestId: (r.request_id as string | undefined) ?? requestId,
    logs: [...logs, ...rawLogs.map((l) => ({ message: String(l.message), level: l.level, timestamp: l.timestamp }))],
  };
  if (typeof r.queue_position === "number") status.queuePosition = r.queue_position;
  if (typeof r.error === "string" && r.error) status.error = r.error;
  if (typeof r.error_type === "string") status.errorType = r.error_type;
  const metrics = r.metrics as { inference_time?: number } | undefined;
  if (typeof metrics?.inference_time === "number") status.inferenceTimeS = metrics.inference_time;
  return status;
}

/**
 * Creates a client for the Hailuo 02 Standard text-to-video endpoint over the unmodified
 * `@fal-ai/client`, pointed at fal or (with `emulatorUrl` / FAL_EMULATOR_URL) at the emulator.
 *
 * Retry ownership: HTTP-level retries of status and result (read-only) belong to the fal client
 * and are reported through `onHttpRetry`. Submits are ours alone: the fal client re-POSTs
 * 429/502/503/504 and transport errors on its own, which may pay twice, so every submit failure
 * reaches us and only a submit that provably never queued (429, connection refused, DNS) is sent
 * again. An answer lost after the request left (reset, timeout, 5xx) throws
 * `SubmitAmbiguousError` for the caller to record. Generation-level retries (a new submit after a
 * failed generation) belong to the caller (the runner), never to this client.
 */
export function createHailuoClient(options: HailuoClientOptions = {}): HailuoClient {
  const emulatorUrl = (options.emulatorUrl ?? process.env.FAL_EMULATOR_URL)?.replace(/\/+$/, "") || undefined;
  const envKey = process.env.FAL_KEY ?? (process.env.FAL_KEY_ID && process.env.FAL_KEY_SECRET ? `${process.env.FAL_KEY_ID}:${process.env.FAL_KEY_SECRET}` : undefined);
  // The real key never goes to an emulator (which may not be on this machine); it gets its own.
  const credentials = options.credentials ?? (emulatorUrl ? (process.env.FAL_EMULATOR_KEY ?? "emulator-key") : envKey);
  if (!credentials) {
    throw new ConfigError("no fal credentials: set FAL_KEY (or FAL_EMULATOR_URL to use the local emulator)");
  }
  if (emulatorUrl && !/^https?:\/\//.test(emulatorUrl)) throw new ConfigError(`emulator URL must start with http:// or https://, got ${JSON.stringify(emulatorUrl)}`);
  const baseFetch = options.fetch ?? globalThis.fetch;
  const { submitRetries = 3, submitRetryBaseDelayMs = 1000 } = options;
  const calls = new AsyncLocalStorage<CallContext>();

  const trackingFetch: typeof globalThis.fetch = async (input, init) => {
    const ctx = calls.getStore();
    if (ctx) {
      ctx.attempts++;
      if (ctx.attempts > 1) options.onHttpRetry?.({ operation: ctx.operation, attempt: ctx.attempts, requestId: ctx.requestId, status: ctx.lastStatus });
    }
    let res: Response;
    try {
      res = await baseFetch(input, init);
    } catch (error) {
      const aborted = error instanceof Error && (error.name === "AbortError" || error.name === "TimeoutError");
      if (ctx?.operation !== "submit" || aborted) throw error;
      // Submits are retried by us alone (see submitOnce): every error thrown here is a HailuoError
      // with no transport-shaped cause, so the fal client's own loop never re-POSTs it.
      const codes = errorCodes(error);
      const reason = [error, (error as { cause?: unknown }).cause].map((e) => (e instanceof Error ? e.message : "")).filter(Boolean).join(": ");
      if (codes.some((c) => NOT_SENT_CODES.has(c))) {
        throw new NetworkError(`could not reach ${hostOf(input)} to submit (${reason}); nothing was sent`, { details: { codes, notSent: true } });
      }
      throw new SubmitAmbiguousError(`the submit was sent but its answer was lost (${reason}); fal may have queued (and will bill) it`, { details: { codes } });
    }
    if (ctx) {
      ctx.lastStatus = res.status;
      if (res.status === 429 || res.status >= 500) ctx.retryAfterS = parseRetryAfter(res.headers.get("retry-after"));
      const retryable = res.headers.get("x-fal-retryable");
      ctx.falRetryable = retryable === null ? undefined : retryable === "true";
    }
    if (ctx?.operation === "submit" && (res.status === 429 || res.status >= 500)) {
      const detail = redactSecrets((await res.text().catch(() => "")).slice(0, 300));
      // 429: fal refused before queueing, safe to send again. A 5xx may come from a gateway that
      // already forwarded the submit (fal queued it), so sending again could pay twice.
      if (res.status === 429) throw new RateLimitError(`rate limited (429) during submit: ${detail}`, { retryAfterS: ctx.retryAfterS, details: { status: 429, operation: "submit" } });
      throw new SubmitAmbiguousError(`fal answered HTTP ${res.status} to a submit (${detail}); a gateway may have forwarded it, so fal may have queued (and will bill) it`, {
        requestId: res.headers.get("x-fal-request-id") ?? undefined,
        details: { status: res.status },
      });
    }
    return res;
  };

  const fal = createFalClient({
    credentials,
    fetch: trackingFetch,
    ...(emulatorUrl && options.emulatorRouting === "proxy"
      ? { proxyUrl: { url: `${emulatorUrl}/fal/proxy`, when: "always" as const } }
      : {}),
    ...(emulatorUrl && options.emulatorRouting !== "proxy"
      ? {
          requestMiddleware: async (req: RequestConfig) => {
            const u = new URL(req.url);
            return { ...req, url: `${emulatorUrl}/__host/${u.host}${u.pathname}${u.search}` };
          },
        }
      : {}),
  });

  async function call<T>(operation: CallContext["operation"], requestId: string | undefined, fn: () => Promise<T>): Promise<T> {
    const ctx: CallContext = { operation, requestId, attempts: 0 };
    try {
      return await calls.run(ctx, fn);
    } catch (error) {
      throw mapFalError(error, { operation, requestId, retryAfterS: ctx.retryAfterS, falRetryable: ctx.falRetryable });
    }
  }

  async function streamOnce(handle: HailuoHandle, signal: AbortSignal, onUpdate?: (s: HailuoStatus) => void): Promise<HailuoStatus | undefined> {
    const stream = await call("stream", handle.requestId, () =>
      fal.queue.streamStatus(handle.endpoint, { requestId: handle.requestId, logs: true }),
    );
    const onAbort = () => stream.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    const logs: HailuoLog[] = [];
    let last: HailuoStatus | undefined;
    stream.on("data", (data: unknown) => {
      // Stream events carry only new log lines; keep the whole history for callers.
      last = toStatus(data as Record<string, unknown>, handle.requestId, logs);
      logs.splice(0, logs.length, ...last.logs);
      onUpdate?.(last);
    });
    try {
      await stream.done();
    } catch (error) {
      throw mapFalError(error, { operation: "stream", requestId: handle.requestId });
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
    if (signal.aborted) throw abortError(signal);
    return last;
  }

  const client: HailuoClient = {
    usingEmulator: Boolean(emulatorUrl),
    platform: createPlatformClient({ credentials, emulatorUrl, fetch: baseFetch }),

    async submit(input, opts = {}) {
      const body: HailuoInput = normalizeHailuoInput(input);
      let attempt = 1;
      const res = await retry(
        () =>
          call("submit", undefined, () => fal.queue.submit(HAILUO_ENDPOINT, { input: body, abortSignal: opts.signal, webhookUrl: opts.webhookUrl })),
        {
          retries: submitRetries,
          baseDelayMs: submitRetryBaseDelayMs,
          signal: opts.signal,
          // Only what provably never queued is sent again: a 429, or a connection that never opened.
          shouldRetry: (e) => isSafeToResubmit(e),
          onRetry: ({ error }) => options.onHttpRetry?.({ operation: "submit", attempt: ++attempt, status: (error as HailuoError).details?.status as number | undefined }),
        },
      ).catch((error: unknown) => {
        throw error instanceof RetryExhaustedError ? (error.errors.at(-1) as HailuoError) : error;
      });
      return { endpoint: HAILUO_ENDPOINT, requestId: res.request_id, submittedAt: new Date().toISOString() };
    },

    async status(handle, opts = {}) {
      const raw = await call("status", handle.requestId, () =>
        fal.queue.status(handle.endpoint, { requestId: handle.requestId, logs: opts.logs ?? false, abortSignal: opts.signal }),
      );
      return toStatus(raw, handle.requestId);
    },

    async wait(handle, opts = {}) {
      const { mode = "stream", pollIntervalMs = 1000, maxPollIntervalMs = 2000, timeoutMs } = opts;
      const controller = new AbortController();
      const onOuterAbort = () => controller.abort(opts.signal?.reason);
      if (opts.signal?.aborted) throw abortError(opts.signal);
      opts.signal?.addEventListener("abort", onOuterAbort, { once: true });
      const timer = timeoutMs
        ? setTimeout(() => controller.abort(new TimeoutError(`no result after ${timeoutMs} ms (request ${handle.requestId} keeps running on fal)`, { requestId: handle.requestId })), timeoutMs)
        : undefined;
      const signal = controller.signal;
      try {
        let streamFailures = 0;
        let interval = pollIntervalMs;
        for (;;) {
          if (signal.aborted) throw abortError(signal);
          if (mode === "stream" && streamFailures < 3) {
            try {
              const last = await streamOnce(handle, signal, opts.onUpdate);
              if (last?.state === "completed") return last;
            } catch (error) {
              if (signal.aborted) throw abortError(signal);
              const mapped = error as HailuoError;
              if (mapped.code === "auth" || mapped.code === "not_found") throw mapped;
              streamFailures++;
            }
          }
          // Polling: the fallback when the stream ended early or failed, or the chosen mode.
          const st = await client.status(handle, { signal, logs: false }).catch((error: unknown) => {
            if (signal.aborted) throw abortError(signal);
            throw error;
          });
          opts.onUpdate?.(st);
          if (st.state === "completed") return st;
          await delay(interval, signal);
          interval = Math.min(maxPollIntervalMs, interval * 1.25);
        }
      } finally {
        if (timer) clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onOuterAbort);
      }
    },

    async result(handle, opts = {}) {
      const res = await call("result", handle.requestId, () =>
        fal.queue.result(handle.endpoint, { requestId: handle.requestId, abortSignal: opts.signal }),
      );
      const data = res.data as HailuoOutput;
      if (!data?.video?.url) throw new ServerError(`result of ${handle.requestId} has no video URL`, { requestId: handle.requestId, retryable: false });
      return data;
    },

    async cancel(handle, opts = {}) {
      try {
        await call("cancel", handle.requestId, () => fal.queue.cancel(handle.endpoint, { requestId: handle.requestId, abortSignal: opts.signal }));
        return "cancellation_requested";
      } catch (error) {
        const status = (error as HailuoError).details?.status;
        if (status === 400) return "already_completed";
        if (status === 404) return "not_found";
        throw error;
      }
    },

    async generate(input, opts = {}) {
      const handle = await client.submit(input, { signal: opts.signal, webhookUrl: opts.webhookUrl });
      await opts.onEnqueue?.(handle);
      const status = await client.wait(handle, opts);
      return { handle, status, output: await resultForStatus(client, handle, status, opts.signal) };
    },
  };

  return client;
}

/**
 * Fetches a completed request's output, classifying how it failed. On fal, COMPLETED is the only
 * terminal state: a failed generation shows COMPLETED without `error` and only its result fetch
 * fails, with 500 {"detail":"Internal Server Error"} (fal's own test fixture, fal repo
 * tests/unit/cli/test_api.py; TanStack/ai#396). So a COMPLETED request whose result answers 500 is
 * a failed generation (not billed; a new submit may succeed); 502/503/504 stay server errors
 * (fetch again). A status `error` (gateway errors, older emulators) means the same.
 */
export async function resultForStatus(client: HailuoClient, handle: HailuoHandle, status: HailuoStatus, signal?: AbortSignal): Promise<HailuoOutput> {
  try {
    return await client.result(handle, { signal });
  } catch (error) {
    const e = error as HailuoError;
    const httpStatus = e.details?.status;
    if (status.state === "completed" && (e.code === "server" || e.code === "http") && (status.error || httpStatus === 500)) {
      throw new GenerationFailedError(`generation failed: ${status.error ?? `result answered HTTP ${httpStatus} (${e.message})`}`, { requestId: handle.requestId, cause: e, details: { errorType: status.errorType, status: httpStatus } });
    }
    throw e;
  }
}

