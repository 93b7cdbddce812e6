import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "@hailuo/emulator";
import { startTestEmulator, startFaultyGateway, makeTempDir, ffprobeFacts, waitFor } from "@hailuo/test-utils";
import {
  createHailuoClient,
  downloadVideo,
  resultForStatus,
  verifyFalWebhook,
  type HailuoStatus,
  type HttpRetryInfo,
} from "./index.js";

// Every test here talks to a real emulator over HTTP through the unmodified @fal-ai/client.

describe("generate against the emulator", () => {
  let emu: Emulator;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  beforeAll(async () => {
    emu = await startTestEmulator();
    tmp = await makeTempDir();
  });
  afterAll(async () => {
    await emu.close();
    await tmp.cleanup();
  });

  it("generates, downloads and probes a 6 s clip, streaming status updates", async () => {
    const client = createHailuoClient({ emulatorUrl: emu.url });
    const updates: HailuoStatus[] = [];
    const { handle, output, status } = await client.generate(
      { prompt: "A lighthouse at dusk, waves crashing", duration: 6 },
      { onUpdate: (s) => updates.push(s) },
    );
    expect(handle.requestId).toMatch(/[0-9a-f-]{36}/);
    expect(JSON.parse(JSON.stringify(handle))).toEqual(handle);
    expect(status.state).toBe("completed");
    expect(updates.some((u) => u.state === "in_progress")).toBe(true);
    expect(updates.at(-1)?.state).toBe("completed");
    expect(status.logs.map((l) => l.message).join("\n")).toContain("Generation complete");
    const file = join(tmp.dir, "clip.mp4");
    const dl = await downloadVideo(output.video.url, file, { expectedBytes: output.video.file_size });
    expect(dl.bytes).toBe(output.video.file_size);
    expect(dl.sha256).toMatch(/^[0-9a-f]{64}$/);
    const facts = await ffprobeFacts(file);
    expect(facts).toMatchObject({ width: 1366, height: 768, frames: 144, codec: "h264", pixFmt: "yuv420p", hasAudio: false });
    const stats = emu.stats();
    // The SSE stream replaced polling: no status polls at all for this clip.
    expect(stats.streamCalls).toBeGreaterThanOrEqual(1);
    expect(stats.statusCalls).toBe(0);
  });

  it("renders a 10 s clip with 240 frames and reaches the emulator through proxyUrl as well", async () => {
    const client = createHailuoClient({ emulatorUrl: emu.url, emulatorRouting: "proxy" });
    const { output } = await client.generate({ prompt: "Ten seconds of rain on a tin roof", duration: "10", prompt_optimizer: false }, { mode: "poll", pollIntervalMs: 100 });
    const file = join(tmp.dir, "ten.mp4");
    await downloadVideo(output.video.url, file);
    const facts = await ffprobeFacts(file);
    expect(facts.frames).toBe(240);
    expect(facts.durationS).toBeCloseTo(10, 1);
  });

  it("rejects invalid input before any request, naming every field", async () => {
    const client = createHailuoClient({ emulatorUrl: emu.url });
    const before = emu.stats().submits.total;
    const err = await client.submit({ prompt: "  ", duration: 7, prompt_optimizer: "yes" as unknown as boolean }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "validation", retryable: false });
    const fields = (err as { problems: { field: string }[] }).problems.map((p) => p.field);
    expect(fields).toEqual(["prompt", "duration", "prompt_optimizer"]);
    const long = await client.submit({ prompt: "x".repeat(2001) }).catch((e: unknown) => e);
    expect(String((long as Error).message)).toContain("2001 characters");
    expect(emu.stats().submits.total).toBe(before);
  });

  it("cancels a queued request; a running one is only signalled and may still complete (fal docs, queue cancel)", async () => {
    const slow = await startTestEmulator({ slots: 1, progressLatencyMs: 1000, render: "shared" });
    try {
      const client = createHailuoClient({ emulatorUrl: slow.url });
      const first = await client.submit({ prompt: "first in line" });
      const second = await client.submit({ prompt: "second in line" });
      const queued = await client.status(second);
      expect(queued).toMatchObject({ state: "queued", queuePosition: 0 });
      expect(await client.cancel(second)).toBe("cancellation_requested");
      const after = await client.status(second);
      expect(after.state).toBe("completed");
      expect(after.error).toContain("cancelled");
      // fal surfaces a cancelled request as client_cancelled (499): nothing billed, a new submit may be made.
      await expect(client.result(second)).rejects.toMatchObject({ code: "request_cancelled", retryable: true });
      expect(await client.cancel({ ...first, requestId: "00000000-0000-0000-0000-000000000000" })).toBe("not_found");
      // "sends a cancellation signal to the runner; the model app decides": here it finishes and bills.
      expect(await client.cancel(first)).toBe("cancellation_requested");
      const finished = await client.wait(first);
      expect((await resultForStatus(client, first, finished)).video.url).toContain("/files/");
      expect(slow.stats().billed.requests).toBe(1);
      expect(await client.cancel(first)).toBe("already_completed");
    } finally {
      await slow.close();
    }
  });

  it("aborts a wait through its AbortSignal without cancelling the request", async () => {
    const slow = await startTestEmulator({ progressLatencyMs: 5000, render: "shared" });
    try {
      const client = createHailuoClient({ emulatorUrl: slow.url });
      const handle = await client.submit({ prompt: "patience" });
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 200);
      await expect(client.wait(handle, { signal: ac.signal })).rejects.toMatchObject({ code: "cancelled" });
      await expect(client.wait(handle, { timeoutMs: 200 })).rejects.toMatchObject({ code: "timeout", retryable: true });
      expect(slow.stats().cancels).toBe(0);
    } finally {
      await slow.close();
    }
  });
});

describe("fault mapping", () => {
  it("a 429 on submit is re-sent once by the core (fal refused it before queueing), visibly, with one queued job", async () => {
    const emu = await startTestEmulator({ render: "shared", faults: { rules: [{ route: "submit", kind: 429, count: 1 }] } });
    try {
      const retries: HttpRetryInfo[] = [];
      const client = createHailuoClient({ emulatorUrl: emu.url, onHttpRetry: (i) => retries.push(i), submitRetryBaseDelayMs: 10 });
      await client.submit({ prompt: "retry me" });
      expect(retries).toEqual([{ operation: "submit", attempt: 2, status: 429 }]);
      expect(emu.stats().submits.total).toBe(1);
    } finally {
      await emu.close();
    }
  });

  it("a lost submit answer is never re-sent silently: SubmitAmbiguousError, one queued job", async () => {
    const emu = await startTestEmulator({ render: "shared", faults: { rules: [{ route: "submit", kind: "drop", count: 1 }] } });
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
      const client = createHailuoClient({ emulatorUrl: emu.url, credentials: "right-key", submitRetryBaseDelayMs: 10 });
      // 4 × 429: the core's 3 re-sends are used up (Retry-After: 1 s is the floor of each wait).
      const limited = await client.submit({ prompt: "too eager" }).catch((e: unknown) => e);
      expect(limited).toMatchObject({ code: "rate_limited", retryable: true, retryAfterS: 1 });
      expect(emu.stats().submits.total).toBe(0);

      // The result endpoint answers 500 once: a ServerError (retryable), not a failed generation.
      const handle = await client.submit({ prompt: "fine prompt" });
      const status = await client.wait(handle);
      await expect(client.result(handle)).rejects.toMatchObject({ code: "server", retryable: true });
      expect((await client.result(handle)).video.url).toContain("/files/");
      expect(status.error).toBeUndefined();

      await expect(client.generate({ prompt: "something Forbidden here" })).rejects.toMatchObject({ code: "content_policy", retryable: false });

      emu.setFaults({ generationErrorCount: 1 });
      await expect(client.generate({ prompt: "unlucky" })).rejects.toMatchObject({ code: "generation_failed", retryable: true });

      const wrong = createHailuoClient({ emulatorUrl: emu.url, credentials: "sk-live-secret-value" });
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
      const client = createHailuoClient({ emulatorUrl: gw.url, onHttpRetry: (i) => retries.push(i), submitRetryBaseDelayMs: 10 });
      gw.failNextSubmits("502");
      const bad = await client.submit({ prompt: "forwarded, then 502" }).catch((e: unknown) => e);
      expect(bad).toMatchObject({ code: "submit_ambiguous", details: { status: 502 } });
      gw.failNextSubmits("reset");
      await expect(client.submit({ prompt: "forwarded, then reset" })).rejects.toMatchObject({ code: "submit_ambiguous" });
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
    const client = createHailuoClient({ emulatorUrl: `http://127.0.0.1:${port}`, onHttpRetry: (i) => retries.push(i), submitRetries: 2, submitRetryBaseDelayMs: 5 });
    const err = await client.submit({ prompt: "nobody home" }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "network", retryable: true, details: { notSent: true } });
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect(retries.map((r) => r.attempt)).toEqual([2, 3]);
  });

  it("maps status-poll 5xx beyond the client's retries to ServerError", async () => {
    const emu = await startTestEmulator({ render: "shared", faults: { rules: [{ route: "status", kind: 502, count: 1 }] } });
    try {
      const retries: HttpRetryInfo[] = [];
      const client = createHailuoClient({ emulatorUrl: emu.url, onHttpRetry: (i) => retries.push(i) });
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
      const handle = await createHailuoClient({ emulatorUrl: emu.url }).submit({ prompt: "whose key?" });
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

describe("webhooks", () => {
  it("delivers a signed webhook that verifies, and rejects a tampered one", async () => {
    const received: { headers: IncomingMessage["headers"]; body: string }[] = [];
    const hook = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        received.push({ headers: req.headers, body });
        res.end("ok");
      });
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    const emu = await startTestEmulator({ render: "shared" });
    try {
      const client = createHailuoClient({ emulatorUrl: emu.url });
      const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook?x=1`;
      const handle = await client.submit({ prompt: "call me back" }, { webhookUrl: hookUrl });
      await client.wait(handle);
      await waitFor(() => received.length > 0);
      expect(received).toHaveLength(1);
      const { headers, body } = received[0]!;
      const jwks = `${emu.url}/.well-known/jwks.json`;
      const verified = await verifyFalWebhook(headers as Record<string, string>, body, { jwks });
      expect(verified.requestId).toBe(handle.requestId);
      expect(JSON.parse(body)).toMatchObject({ status: "OK", request_id: handle.requestId, payload: { video: { content_type: "video/mp4" } } });
      await expect(verifyFalWebhook(headers as Record<string, string>, body.replace("OK", "ERROR"), { jwks })).rejects.toMatchObject({ code: "webhook_invalid" });
      const stale = Date.now() + 301_000;
      await expect(verifyFalWebhook(headers as Record<string, string>, body, { jwks, nowMs: stale })).rejects.toThrow(/window/);
      expect(emu.stats().webhooks.delivered).toBe(1);
    } finally {
      await emu.close();
      hook.close();
    }
  });
});

describe("downloadVideo", () => {
  it("a short write (a disk filling up) is completed or fails naming the path: never a truncated clip", async () => {
    const emu = await startTestEmulator({ render: "shared" });
    const tmp = await makeTempDir();
    try {
      const client = createHailuoClient({ emulatorUrl: emu.url });
      const { output } = await client.generate({ prompt: "short writes" });
      // The OS takes at most 1000 bytes per write: every byte must still land.
      const whole = await downloadVideo(output.video.url, join(tmp.dir, "whole.mp4"), {
        expectedBytes: output.video.file_size,
        write: async (file, buf, pos) => (await file.write(buf, 0, Math.min(buf.length, 1000), pos)).bytesWritten,
      });
      expect((await stat(whole.path)).size).toBe(output.video.file_size);
      // Then the disk is full: a short write, then ENOSPC.
      let written = 0;
      const target = join(tmp.dir, "full.mp4");
      const err = await downloadVideo(output.video.url, target, {
        write: async (file, buf, pos) => {
          if (written > 40_000) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
          const n = (await file.write(buf, 0, Math.min(buf.length, 4096), pos)).bytesWritten;
          written += n;
          return n;
        },
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "disk_full", retryable: false });
      expect((err as Error).message).toContain(target);
      expect(existsSync(target)).toBe(false);
      expect((await readdir(tmp.dir)).sort()).toEqual(["whole.mp4"]);
    } finally {
      await emu.close();
      await tmp.cleanup();
    }
  });

  it("never leaves a file at the path when the transfer is cut off", async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-length": "100000", "content-type": "video/mp4" });
      res.write(Buffer.alloc(5000));
      setTimeout(() => res.destroy(), 20);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const tmp = await makeTempDir();
    try {
      const target = join(tmp.dir, "cut.mp4");
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x.mp4`;
      await expect(downloadVideo(url, target)).rejects.toMatchObject({ code: "download", retryable: true });
      expect(existsSync(target)).toBe(false);
      expect(await readdir(tmp.dir)).toEqual([]);
    } finally {
      server.close();
      await tmp.cleanup();
    }
  });
});
