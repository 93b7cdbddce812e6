import { abortError } from "./errors.js";

/** Time as the pipeline sees it; tests pass a fake one instead of sleeping. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`, or rejects with a CancelledError when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Sleeps on real timers; rejects at once when the signal is (or becomes) aborted. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      },
      Math.max(0, ms),
    );
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Resolves once `signal` aborts, at once when it already has (a listener added then never fires). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true }),
  );
}

/** The real clock. */
export const systemClock: Clock = { now: () => Date.now(), sleep: delay };

/**
 * A clock that only moves when told to: `sleep` resolves when `advance` passes its deadline.
 * Used by tests of schedules and backoff so they never wait on real time.
 */
export function createManualClock(
  startMs = 0,
): Clock & { advance(ms: number): Promise<void>; pending(): number } {
  let nowMs = startMs;
  const sleepers: { at: number; resolve: () => void }[] = [];
  return {
    now: () => nowMs,
    pending: () => sleepers.length,
    sleep(ms, signal) {
      if (signal?.aborted) return Promise.reject(abortError(signal));
      return new Promise((resolve, reject) => {
        const entry = { at: nowMs + Math.max(0, ms), resolve };
        sleepers.push(entry);
        signal?.addEventListener(
          "abort",
          () => {
            const i = sleepers.indexOf(entry);
            if (i >= 0) sleepers.splice(i, 1);
            reject(abortError(signal));
          },
          { once: true },
        );
      });
    },
    async advance(ms) {
      const target = nowMs + ms;
      await new Promise((r) => setImmediate(r));
      for (;;) {
        sleepers.sort((a, b) => a.at - b.at);
        const next = sleepers[0];
        if (!next || next.at > target) break;
        sleepers.shift();
        nowMs = next.at;
        next.resolve();
        // Let the woken task run (and maybe sleep again) before moving time further.
        await new Promise((r) => setImmediate(r));
      }
      nowMs = target;
    },
  };
}
