import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { startTestEmulator, startFaultyGateway } from "@hailuo/test-utils";
import { createHailuoClient, type HttpRetryInfo } from "./index.js";

// fal's failures as the client meets them, over real HTTP against the emulator and a faulty gateway.

describe("fault mapping", () => {
  it("a 429 on submit is re-sent once by the core (fal refused it before queueing), visibly, with one queued job", async () => {
    const emu = await startTestEmulator({
      render: "shared",
      faults: { rules: [{ route: "submit", kind: 429, count: 1 }] },
    });
    try {
      const retries: HttpRetryInfo[] = [];
      const client = createHailuoClient({
        emulatorUrl: emu.url,
        onHttpRetry: (i) => retries.push(i),
        submitRetryBaseDelayMs: 10,
      });
      await client.submit({ prompt: "retry me" });
      expect(retries).toEqual([{ operation: "submit", attempt: 2, status: 429 }]);
      expect(emu.stats().submits.total).toBe(1);
    } finally {
      await emu.close();
    }
  });

  it("a lost submit answer is never re-sent silently: SubmitAmbiguousError, one queued job", async () => {
    const emu = await startTestEmulator({
      render: "shared",
      faults: { rules: [{ route: "submit", kind: "drop", count: 1 }] },
    });
    try {
      const client = createHailuoClient({ emulatorUrl: emu.url });
      const err = await client.submit({ prompt: "lost in transit" }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "submit_ambiguous", retryable: true });
      expect(emu.stats().submits.total).toBe(1);
    } finally {
      await emu.close();
    }
  });

  it("maps persistent 429 (with Retry-After), 5xx, auth, policy and failed generations to typed errors", async () => {
    const emu = await startTestEmulator({
      render: "shared",
      apiKey: "right-key",
      faults: {
        rules: [
          { route: "submit", kind: 429, count: 4, retryAfterS: 1 },
          { route: "result", kind: 500, count: 1 },
        ],
        policyWords: ["forbidden"],
        generationErrorCount: 0,
      },
    });
    try {
      const client = createHailuoClient({
        emulatorUrl: emu.url,
        credentials: "right-key",
        submitRetryBaseDelayMs: 10,
      });
      // 4 × 429: the core's 3 re-sends are used up (Retry-After: 1 s is the floor of each wait).
      const limited = await client.submit({ prompt: "too eager" }).catch((e: unknown) => e);
      expect(limited).toMatchObject({ code: "rate_limited", retryable: true, retryAfterS: 1 });
      expect(emu.stats().submits.total).toBe(0);

      // The result endpoint answers 500 once: a ServerError (retryable), not a failed generation.
      const handle = await client.submit({ prompt: "fine prompt" });
      const status = await client.wait(handle);
      await expect(client.result(handle)).rejects.toMatchObject({
        code: "server",
        retryable: true,
      });
      expect((await client.result(handle)).video.url).toContain("/files/");
      expect(status.error).toBeUndefined();

      await expect(client.generate({ prompt: "something Forbidden here" })).rejects.toMatchObject({
        code: "content_policy",
        retryable: false,
      });

      emu.setFaults({ generationErrorCount: 1 });
      await expect(client.generate({ prompt: "unlucky" })).rejects.toMatchObject({
        code: "generation_failed",
        retryable: true,
      });

      const wrong = createHailuoClient({
        emulatorUrl: emu.url,
        credentials: "sk-live-secret-value",
      });
      const auth = await wrong.submit({ prompt: "who am i" }).catch((e: unknown) => e);
      expect(auth).toMatchObject({ code: "auth", retryable: false });
      const everything = `${String(auth)} ${JSON.stringify(auth)} ${(auth as Error).stack} ${JSON.stringify((auth as { details?: unknown }).details)}`;
      expect(everything).not.toContain("sk-live-secret-value");
    } finally {
      await emu.close();
    }
  }, 30_000);

  it("never re-sends a submit whose answer a gateway lost after fal queued it (502 or reset): one queued job each", async () => {
    const emu = await startTestEmulator({ render: "shared" });
    const gw = await startFaultyGateway(emu.url);
    try {
      const retries: HttpRetryInfo[] = [];
      const client = createHailuoClient({
        emulatorUrl: gw.url,
        onHttpRetry: (i) => retries.push(i),
        submitRetryBaseDelayMs: 10,
      });
      gw.failNextSubmits("502");
      const bad = await client.submit({ prompt: "forwarded, then 502" }).catch((e: unknown) => e);
      expect(bad).toMatchObject({ code: "submit_ambiguous", details: { status: 502 } });
      gw.failNextSubmits("reset");
      await expect(client.submit({ prompt: "forwarded, then reset" })).rejects.toMatchObject({
        code: "submit_ambiguous",
      });
      // The fal client would have re-POSTed both (it retries 502 and resets): here nothing was re-sent.
      expect(retries).toEqual([]);
      expect(emu.stats().submits.total).toBe(2);
    } finally {
      await gw.close();
      await emu.close();
    }
  });

  it("re-sends a submit that never left (connection refused) and says which host it could not reach", async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    const retries: HttpRetryInfo[] = [];
    const client = createHailuoClient({
      emulatorUrl: `http://127.0.0.1:${port}`,
      onHttpRetry: (i) => retries.push(i),
      submitRetries: 2,
      submitRetryBaseDelayMs: 5,
    });
    const err = await client.submit({ prompt: "nobody home" }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "network", retryable: true, details: { notSent: true } });
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect(retries.map((r) => r.attempt)).toEqual([2, 3]);
    // A port the fetch standard blocks is refused before any connection: never sent either.
    const blocked = await createHailuoClient({
      emulatorUrl: "http://127.0.0.1:9",
      submitRetries: 0,
    })
      .submit({ prompt: "blocked" })
      .catch((e: unknown) => e);
    expect(blocked).toMatchObject({ code: "network", details: { notSent: true } });
  });

  it("maps status-poll 5xx beyond the client's retries to ServerError", async () => {
    const emu = await startTestEmulator({
      render: "shared",
      faults: { rules: [{ route: "status", kind: 502, count: 1 }] },
    });
    try {
      const retries: HttpRetryInfo[] = [];
      const client = createHailuoClient({
        emulatorUrl: emu.url,
        onHttpRetry: (i) => retries.push(i),
      });
      const handle = await client.submit({ prompt: "poll me" });
      const st = await client.status(handle);
      expect(st.requestId).toBe(handle.requestId);
      expect(retries.map((r) => [r.operation, r.status])).toEqual([["status", 502]]);
    } finally {
      await emu.close();
    }
  });

  it("never sends the real FAL_KEY to an emulator", async () => {
    const emu = await startTestEmulator({ render: "shared", apiKey: "emulator-key" });
    const saved = process.env.FAL_KEY;
    process.env.FAL_KEY = "real-secret-key";
    try {
      // The emulator accepts only "emulator-key": a submit succeeds only if the real key stayed home.
      const handle = await createHailuoClient({ emulatorUrl: emu.url }).submit({
        prompt: "whose key?",
      });
      expect(handle.requestId).toBeTruthy();
    } finally {
      if (saved === undefined) delete process.env.FAL_KEY;
      else process.env.FAL_KEY = saved;
      await emu.close();
    }
  });

  it("needs credentials when no emulator is configured", () => {
    const saved = { key: process.env.FAL_KEY, emu: process.env.FAL_EMULATOR_URL };
    delete process.env.FAL_KEY;
    delete process.env.FAL_EMULATOR_URL;
    try {
      expect(() => createHailuoClient()).toThrow(/FAL_KEY/);
    } finally {
      if (saved.key !== undefined) process.env.FAL_KEY = saved.key;
      if (saved.emu !== undefined) process.env.FAL_EMULATOR_URL = saved.emu;
    }
  });
});
