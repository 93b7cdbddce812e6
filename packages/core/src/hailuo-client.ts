import { createFalClient, type RequestMiddleware } from "@fal-ai/client";
import {
  HAILUO_ENDPOINT,
  emulatorHostUrl,
  normalizeHailuoInput,
  normalizeInput,
  type EndpointInput,
  type HailuoInput,
  type HailuoInputLike,
  type HailuoOutput,
} from "@hailuo/endpoints";
import { CancelledError, RetryExhaustedError, retry, type HailuoError } from "@hailuo/shared";
import type {
  EndpointInputLike,
  HailuoClient,
  HailuoClientOptions,
  HailuoHandle,
  HailuoStatus,
} from "./client-types.js";
import { createFalTransport, isSafeToResubmit } from "./fal-transport.js";
import { ConfigError, GenerationFailedError, ServerError } from "./hailuo-errors.js";
import { createPlatformClient } from "./platform-api.js";
import { toStatus } from "./queue-status.js";
import { streamOnce, waitForCompletion } from "./wait.js";

type RequestConfig = Parameters<RequestMiddleware>[0];

/** Where requests go and with which key: the real key never goes to an emulator (which may not be on this machine). */
function resolveTarget(options: HailuoClientOptions): {
  emulatorUrl?: string;
  credentials: string;
} {
  const emulatorUrl =
    (options.emulatorUrl ?? process.env.FAL_EMULATOR_URL)?.replace(/\/+$/, "") || undefined;
  const envKey =
    process.env.FAL_KEY ??
    (process.env.FAL_KEY_ID && process.env.FAL_KEY_SECRET
      ? `${process.env.FAL_KEY_ID}:${process.env.FAL_KEY_SECRET}`
      : undefined);
  const credentials =
    options.credentials ??
    (emulatorUrl ? (process.env.FAL_EMULATOR_KEY ?? "emulator-key") : envKey);
  if (!credentials) {
    throw new ConfigError(
      "no fal credentials: set FAL_KEY (or FAL_EMULATOR_URL to use the local emulator)",
    );
  }
  if (emulatorUrl && !/^https?:\/\//.test(emulatorUrl))
    throw new ConfigError(
      `emulator URL must start with http:// or https://, got ${JSON.stringify(emulatorUrl)}`,
    );
  return { emulatorUrl, credentials };
}

/**
 * The endpoint and the exact body of an input: the seed's as it has always been normalised, any
 * other endpoint's from its record (an unknown id throws UnknownEndpointError before sending).
 */
function bodyFor(input: HailuoInputLike | EndpointInputLike): {
  endpoint: string;
  body: HailuoInput | EndpointInput;
} {
  const { endpoint = HAILUO_ENDPOINT, ...rest } = input as EndpointInputLike;
  if (endpoint === HAILUO_ENDPOINT)
    return { endpoint, body: normalizeHailuoInput("endpoint" in input ? rest : input) };
  return { endpoint, body: normalizeInput(endpoint, rest) };
}

/**
 * Creates a client for the MiniMax Hailuo endpoints (by default Hailuo 02 Standard
 * text-to-video, the seed; see `submit`) over the unmodified
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
  const { emulatorUrl, credentials } = resolveTarget(options);
  const baseFetch = options.fetch ?? globalThis.fetch;
  const { submitRetries = 3, submitRetryBaseDelayMs = 1000 } = options;
  const { fetch: trackingFetch, call } = createFalTransport(baseFetch, options.onHttpRetry);

  const fal = createFalClient({
    credentials,
    fetch: trackingFetch,
    ...(emulatorUrl && options.emulatorRouting === "proxy"
      ? { proxyUrl: { url: `${emulatorUrl}/fal/proxy`, when: "always" as const } }
      : {}),
    ...(emulatorUrl && options.emulatorRouting !== "proxy"
      ? {
          requestMiddleware: async (req: RequestConfig) => ({
            ...req,
            url: emulatorHostUrl(emulatorUrl, req.url),
          }),
        }
      : {}),
  });

  const client: HailuoClient = {
    usingEmulator: Boolean(emulatorUrl),
    platform: createPlatformClient({ credentials, emulatorUrl, fetch: baseFetch }),

    async submit(input, opts = {}) {
      const { endpoint, body } = bodyFor(input);
      let attempt = 1;
      let sent = 0;
      // A send whose answer never came (it may be queued); false after a refusal that queued nothing.
      let unanswered = false;
      const res = await retry(
        async () => {
          if (sent++ > 0) await opts.beforeResend?.();
          unanswered = true;
          return call("submit", undefined, () =>
            fal.queue.submit(endpoint, {
              input: body,
              abortSignal: opts.signal,
              webhookUrl: opts.webhookUrl,
            }),
          ).catch((error: unknown) => {
            if (isSafeToResubmit(error)) unanswered = false;
            throw error;
          });
        },
        {
          retries: submitRetries,
          baseDelayMs: submitRetryBaseDelayMs,
          signal: opts.signal,
          // Only what provably never queued is sent again: a 429, or a connection that never opened.
          shouldRetry: (e) => isSafeToResubmit(e),
          onRetry: ({ error }) =>
            options.onHttpRetry?.({
              operation: "submit",
              attempt: ++attempt,
              status: (error as HailuoError).details?.status as number | undefined,
            }),
        },
      ).catch((error: unknown) => {
        // Stopped before a send or while waiting to send again (every earlier one was refused
        // unqueued): nothing of this submit is on fal, so it is not a possible charge.
        if (error instanceof CancelledError && !unanswered)
          throw new CancelledError(`${error.message} before the submit was sent`, {
            details: { notSent: true },
          });
        throw error instanceof RetryExhaustedError ? (error.errors.at(-1) as HailuoError) : error;
      });
      return {
        endpoint,
        requestId: res.request_id,
        submittedAt: new Date().toISOString(),
      };
    },

    async status(handle, opts = {}) {
      const raw = await call("status", handle.requestId, () =>
        fal.queue.status(handle.endpoint, {
          requestId: handle.requestId,
          logs: opts.logs ?? false,
          abortSignal: opts.signal,
        }),
      );
      return toStatus(raw, handle.requestId);
    },

    wait(handle, opts = {}) {
      return waitForCompletion(handle, opts, {
        streamOnce: (h, s, u) => streamOnce(fal, call, h, s, u),
        status: (h, o) => client.status(h, o),
      });
    },

    async result(handle, opts = {}) {
      const res = await call("result", handle.requestId, () =>
        fal.queue.result(handle.endpoint, {
          requestId: handle.requestId,
          abortSignal: opts.signal,
        }),
      );
      const data = res.data as HailuoOutput;
      if (!data?.video?.url)
        throw new ServerError(`result of ${handle.requestId} has no video URL`, {
          requestId: handle.requestId,
          retryable: false,
        });
      return data;
    },

    async cancel(handle, opts = {}) {
      try {
        await call("cancel", handle.requestId, () =>
          fal.queue.cancel(handle.endpoint, {
            requestId: handle.requestId,
            abortSignal: opts.signal,
          }),
        );
        return "cancellation_requested";
      } catch (error) {
        const status = (error as HailuoError).details?.status;
        if (status === 400) return "already_completed";
        if (status === 404) return "not_found";
        throw error;
      }
    },

    async upload(file, opts = {}) {
      opts.signal?.throwIfAborted();
      // fal-js has no abort for uploads: an abort stops the wait, the upload may still land
      // (it costs nothing). Its initiate call retries inside the client; the PUT does not.
      const upload = call("upload", undefined, () => fal.storage.upload(file));
      if (!opts.signal) return upload;
      const signal = opts.signal;
      return new Promise<string>((resolve, reject) => {
        const onAbort = () => reject(new CancelledError("upload cancelled"));
        signal.addEventListener("abort", onAbort, { once: true });
        upload.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
      });
    },

    async generate(input, opts = {}) {
      const handle = await client.submit(input, {
        signal: opts.signal,
        webhookUrl: opts.webhookUrl,
      });
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
export async function resultForStatus(
  client: HailuoClient,
  handle: HailuoHandle,
  status: HailuoStatus,
  signal?: AbortSignal,
): Promise<HailuoOutput> {
  try {
    return await client.result(handle, { signal });
  } catch (error) {
    const e = error as HailuoError;
    const httpStatus = e.details?.status;
    if (
      status.state === "completed" &&
      (e.code === "server" || e.code === "http") &&
      (status.error || httpStatus === 500)
    ) {
      throw new GenerationFailedError(
        `generation failed: ${status.error ?? `result answered HTTP ${httpStatus} (${e.message})`}`,
        {
          requestId: handle.requestId,
          cause: e,
          details: { errorType: status.errorType, status: httpStatus },
        },
      );
    }
    throw e;
  }
}
