import { describe, expect, it } from "vitest";
import {
  HailuoError,
  createManualClock,
  retry,
  backoffDelayMs,
  RetryExhaustedError,
  redactSecrets,
} from "./index.js";

const transient = () => new HailuoError("server", "boom", { retryable: true });

describe("retry", () => {
  it("retries retryable errors with full-jitter backoff on an injected clock, keeping every error", async () => {
    const clock = createManualClock();
    const waits: number[] = [];
    let calls = 0;
    const p = retry(
      async () => {
        calls++;
        throw transient();
      },
      {
        retries: 2,
        baseDelayMs: 100,
        clock,
        random: () => 0.5,
        onRetry: (i) => waits.push(i.delayMs),
      },
    );
    const settled = p.catch((e: unknown) => e);
    await clock.advance(1000);
    const err = await settled;
    expect(calls).toBe(3);
    expect(waits).toEqual([50, 100]);
    expect(err).toBeInstanceOf(RetryExhaustedError);
    expect((err as RetryExhaustedError).errors).toHaveLength(3);
    expect((err as RetryExhaustedError).code).toBe("server");
  });

  it("stops at once on a non-retryable error and never retries an abort", async () => {
    let calls = 0;
    await expect(
      retry(async () => {
        calls++;
        throw new HailuoError("validation", "bad", { retryable: false });
      }),
    ).rejects.toMatchObject({ code: "validation" });
    expect(calls).toBe(1);

    const ac = new AbortController();
    const clock = createManualClock();
    const p = retry(
      async () => {
        throw transient();
      },
      { clock, signal: ac.signal },
    ).catch((e: unknown) => e);
    await Promise.resolve();
    ac.abort();
    expect(await p).toMatchObject({ code: "cancelled" });
  });

  it("honours Retry-After as a floor", () => {
    const e = new HailuoError("rate_limited", "slow down", { retryable: true, retryAfterS: 3 });
    expect(backoffDelayMs(0, e, { random: () => 0 })).toBe(3000);
    expect(backoffDelayMs(10, transient(), { random: () => 0.999, maxDelayMs: 5000 })).toBe(4995);
  });

  it("bounds Retry-After at 60 s (or the given cap) so one header cannot park a run", () => {
    const hours = new HailuoError("rate_limited", "come back tomorrow", {
      retryable: true,
      retryAfterS: 86_400,
    });
    expect(backoffDelayMs(0, hours, { random: () => 0 })).toBe(60_000);
    expect(backoffDelayMs(0, hours, { random: () => 0, maxRetryAfterMs: 5000 })).toBe(5000);
  });
});

describe("redactSecrets", () => {
  it("removes the current FAL_KEY and authorization values", () => {
    process.env.FAL_KEY = "abcd-1234-secret";
    try {
      expect(redactSecrets("failed with abcd-1234-secret and Authorization: Key other:thing")).toBe(
        "failed with *** and Authorization: Key ***",
      );
    } finally {
      delete process.env.FAL_KEY;
    }
  });
});
