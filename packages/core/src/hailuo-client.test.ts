import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "@hailuo/emulator";
import {
  startTestEmulator,
  makeTempDir,
  ffprobeFacts,
  heldClock,
  holdableClock,
  waitFor,
} from "@hailuo/test-utils";
import {
  createHailuoClient,
  downloadVideo,
  resultForStatus,
  verifyFalWebhook,
  type HailuoStatus,
} from "./index.js";

// Every test here talks to a real emulator over HTTP through the unmodified @fal-ai/client.

describe("generate against the emulator", () => {
  let emu: Emulator;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  const gate = holdableClock();
  beforeAll(async () => {
    emu = await startTestEmulator({ clock: gate.clock });
    tmp = await makeTempDir();
  });
  afterEach(() => gate.release());
  afterAll(async () => {
    await emu.close();
    await tmp.cleanup();
  });

  it("generates, downloads and probes a 6 s clip, streaming status updates", async () => {
    const client = createHailuoClient({ emulatorUrl: emu.url });
    const updates: HailuoStatus[] = [];
    // Held until the client has told an update in progress: a 200 ms generation could otherwise
    // end before the status stream opens, on a slow machine.
    gate.hold();
    const { handle, output, status } = await client.generate(
      { prompt: "A lighthouse at dusk, waves crashing", duration: 6 },
      {
        onUpdate: (s) => {
          updates.push(s);
          if (s.state === "in_progress") gate.release();
        },
      },
    );
    expect(handle.requestId).toMatch(/[0-9a-f-]{36}/);
    expect(JSON.parse(JSON.stringify(handle))).toEqual(handle);
    expect(status.state).toBe("completed");
    expect(updates.some((u) => u.state === "in_progress")).toBe(true);
    expect(updates.at(-1)?.state).toBe("completed");
    expect(status.logs.map((l) => l.message).join("\n")).toContain("Generation complete");
    const file = join(tmp.dir, "clip.mp4");
    const dl = await downloadVideo(output.video.url, file, {
      expectedBytes: output.video.file_size,
    });
    expect(dl.bytes).toBe(output.video.file_size);
    expect(dl.sha256).toMatch(/^[0-9a-f]{64}$/);
    const facts = await ffprobeFacts(file);
    // 180 lines: the test emulator's size (the seed's 1366×768 is the emulator's test to check).
    expect(facts).toMatchObject({
      width: 320,
      height: 180,
      frames: 144,
      codec: "h264",
      pixFmt: "yuv420p",
      hasAudio: false,
    });
    const stats = emu.stats();
    // The SSE stream replaced polling: no status polls at all for this clip.
    expect(stats.streamCalls).toBeGreaterThanOrEqual(1);
    expect(stats.statusCalls).toBe(0);
  });

  it("renders a 10 s clip with 240 frames and reaches the emulator through proxyUrl as well", async () => {
    const client = createHailuoClient({ emulatorUrl: emu.url, emulatorRouting: "proxy" });
    const { output } = await client.generate(
      { prompt: "Ten seconds of rain on a tin roof", duration: "10", prompt_optimizer: false },
      { mode: "poll", pollIntervalMs: 100 },
    );
    const file = join(tmp.dir, "ten.mp4");
    await downloadVideo(output.video.url, file);
    const facts = await ffprobeFacts(file);
    expect(facts.frames).toBe(240);
    expect(facts.durationS).toBeCloseTo(10, 1);
  });

  it("rejects invalid input before any request, naming every field", async () => {
    const client = createHailuoClient({ emulatorUrl: emu.url });
    const before = emu.stats().submits.total;
    const err = await client
      .submit({
        prompt: "  ",
        duration: 7 as unknown as 6,
        prompt_optimizer: "yes" as unknown as boolean,
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "validation", retryable: false });
    const fields = (err as { problems: { field: string }[] }).problems.map((p) => p.field);
    expect(fields).toEqual(["prompt", "duration", "prompt_optimizer"]);
    const long = await client.submit({ prompt: "x".repeat(2001) }).catch((e: unknown) => e);
    expect(String((long as Error).message)).toContain("2001 characters");
    expect(emu.stats().submits.total).toBe(before);
  });

  it("cancels a queued request; a running one is only signalled and may still complete (fal docs, queue cancel)", async () => {
    // Held until both cancels are sent: "first" is still running then, "second" still queued.
    const held = heldClock();
    const slow = await startTestEmulator({
      slots: 1,
      progressLatencyMs: 1000,
      render: "shared",
      clock: held.clock,
    });
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
      await expect(client.result(second)).rejects.toMatchObject({
        code: "request_cancelled",
        retryable: true,
      });
      expect(
        await client.cancel({ ...first, requestId: "00000000-0000-0000-0000-000000000000" }),
      ).toBe("not_found");
      // "sends a cancellation signal to the runner; the model app decides": here it finishes and bills.
      expect(await client.cancel(first)).toBe("cancellation_requested");
      held.release();
      const finished = await client.wait(first);
      expect((await resultForStatus(client, first, finished)).video.url).toContain("/files/");
      expect(slow.stats().billed.requests).toBe(1);
      expect(await client.cancel(first)).toBe("already_completed");
    } finally {
      await slow.close();
    }
  });

  it("aborts a wait through its AbortSignal without cancelling the request", async () => {
    // Held: the request never finishes, however slow the machine.
    const slow = await startTestEmulator({ render: "shared", clock: heldClock().clock });
    try {
      const client = createHailuoClient({ emulatorUrl: slow.url });
      const handle = await client.submit({ prompt: "patience" });
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 200);
      await expect(client.wait(handle, { signal: ac.signal })).rejects.toMatchObject({
        code: "cancelled",
      });
      await expect(client.wait(handle, { timeoutMs: 200 })).rejects.toMatchObject({
        code: "timeout",
        retryable: true,
      });
      expect(slow.stats().cancels).toBe(0);
    } finally {
      await slow.close();
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
      expect(JSON.parse(body)).toMatchObject({
        status: "OK",
        request_id: handle.requestId,
        payload: { video: { content_type: "video/mp4" } },
      });
      await expect(
        verifyFalWebhook(headers as Record<string, string>, body.replace("OK", "ERROR"), { jwks }),
      ).rejects.toMatchObject({ code: "webhook_invalid" });
      const stale = Date.now() + 301_000;
      await expect(
        verifyFalWebhook(headers as Record<string, string>, body, { jwks, nowMs: stale }),
      ).rejects.toThrow(/window/);
      expect(emu.stats().webhooks.delivered).toBe(1);
    } finally {
      await emu.close();
      hook.close();
    }
  });
});
