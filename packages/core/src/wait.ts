import type { FalClient } from "@fal-ai/client";
import { TimeoutError, abortError, delay, type HailuoError } from "@hailuo/shared";
import type { HailuoHandle, HailuoLog, HailuoStatus, WaitOptions } from "./client-types.js";
import type { FalTransport } from "./fal-transport.js";
import { mapFalError } from "./hailuo-errors.js";
import { toStatus } from "./queue-status.js";

/** What waiting needs from the client. */
export interface WaitIo {
  streamOnce(
    handle: HailuoHandle,
    signal: AbortSignal,
    onUpdate?: (s: HailuoStatus) => void,
  ): Promise<HailuoStatus | undefined>;
  status(
    handle: HailuoHandle,
    opts: { signal?: AbortSignal; logs?: boolean },
  ): Promise<HailuoStatus>;
}

/** One SSE status stream, until it ends; the last status seen (or undefined). */
export async function streamOnce(
  fal: FalClient,
  call: FalTransport["call"],
  handle: HailuoHandle,
  signal: AbortSignal,
  onUpdate?: (s: HailuoStatus) => void,
): Promise<HailuoStatus | undefined> {
  const stream = await call("stream", handle.requestId, () =>
    fal.queue.streamStatus(handle.endpoint, { requestId: handle.requestId, logs: true }),
  );
  const onAbort = () => stream.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  // A stop while the stream was being opened has fired already: no listener would hear it, and
  // the wait would last until the request ends (a Ctrl-C ignored for minutes).
  if (signal.aborted) onAbort();
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

/**
 * Waits for COMPLETED over fal's SSE status stream (one connection per clip), falling back to
 * polling that starts at `pollIntervalMs` and backs off ×1.25 to `maxPollIntervalMs`.
 */
export async function waitForCompletion(
  handle: HailuoHandle,
  opts: WaitOptions,
  io: WaitIo,
): Promise<HailuoStatus> {
  const { mode = "stream", pollIntervalMs = 1000, maxPollIntervalMs = 2000, timeoutMs } = opts;
  const controller = new AbortController();
  const onOuterAbort = () => controller.abort(opts.signal?.reason);
  if (opts.signal?.aborted) throw abortError(opts.signal);
  opts.signal?.addEventListener("abort", onOuterAbort, { once: true });
  const timer = timeoutMs
    ? setTimeout(
        () =>
          controller.abort(
            new TimeoutError(
              `no result after ${timeoutMs} ms (request ${handle.requestId} keeps running on fal)`,
              { requestId: handle.requestId },
            ),
          ),
        timeoutMs,
      )
    : undefined;
  const signal = controller.signal;
  try {
    let streamFailures = 0;
    let interval = pollIntervalMs;
    for (;;) {
      if (signal.aborted) throw abortError(signal);
      if (mode === "stream" && streamFailures < 3) {
        try {
          const last = await io.streamOnce(handle, signal, opts.onUpdate);
          if (last?.state === "completed") return last;
        } catch (error) {
          if (signal.aborted) throw abortError(signal);
          const mapped = error as HailuoError;
          if (mapped.code === "auth" || mapped.code === "not_found") throw mapped;
          streamFailures++;
        }
      }
      // Polling: the fallback when the stream ended early or failed, or the chosen mode.
      const st = await io.status(handle, { signal, logs: false }).catch((error: unknown) => {
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
}
