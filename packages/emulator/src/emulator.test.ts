import { execFile } from "node:child_process";
import { createServer } from "node:http";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseFaultFlag, type Emulator, type EmulatorClock } from "./index.js";
import { auth, body, startTestEmulator, untilCompleted } from "./test-http.js";

// Raw HTTP against the emulator: the wire shapes fal's clients depend on (reference §12).
const Q = "/__host/queue.fal.run";
const EP = "fal-ai/minimax/hailuo-02/standard/text-to-video";

describe("emulator wire protocol", () => {
  // Timers that wait while held (test-utils' holdableClock, which this package cannot import: it
  // depends on it): a request stays in progress, and the one behind it queued, until the test has
  // seen them so, however slow the machine.
  let held = false;
  const parked: (() => void)[] = [];
  const clock: EmulatorClock = {
    now: () => Date.now(),
    setTimeout(fn, ms) {
      const t: { real?: NodeJS.Timeout; cleared?: boolean } = {};
      const start = () => void (t.cleared || (t.real = setTimeout(fn, ms)));
      if (held) parked.push(start);
      else start();
      return t;
    },
    clearTimeout(handle) {
      const t = handle as { real?: NodeJS.Timeout; cleared?: boolean };
      t.cleared = true;
      clearTimeout(t.real);
    },
  };
  const release = () => {
    held = false;
    for (const start of parked.splice(0)) start();
  };
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startTestEmulator({ slots: 1, render: "shared", progressLatencyMs: 300, clock });
  });
  afterEach(release);
  afterAll(() => emu.close());

  const submit = (body: unknown) =>
    fetch(`${emu.url}${Q}/${EP}`, { method: "POST", headers: auth, body: JSON.stringify(body) });

  it("queues, reports positions, answers 202 then 200 with logs and metrics, and serves the clip with ranges", async () => {
    held = true;
    const a = await body(await submit({ prompt: "one" }));
    const resB = await submit({ prompt: "two", duration: "10" });
    expect(resB.headers.get("x-fal-request-id")).toBeTruthy();
    const b = await body(resB);
    expect(b).toMatchObject({ status: "IN_QUEUE", queue_position: 0 });
    expect(b.status_url).toBe(`${emu.url}${Q}/fal-ai/minimax/requests/${b.request_id}/status`);
    const qs = await fetch(`${b.status_url}?logs=0`, { headers: auth });
    expect(qs.status).toBe(202);
    expect(await body(qs)).toMatchObject({ status: "IN_QUEUE", queue_position: 0 });
    const ip = await body(await fetch(`${a.status_url}?logs=true`, { headers: auth }));
    expect(ip.status).toBe("IN_PROGRESS");
    expect(Array.isArray(ip.logs)).toBe(true);
    const ipNoLogs = await body(await fetch(`${a.status_url}?logs=0`, { headers: auth }));
    expect(ipNoLogs.logs).toBeNull();
    release();
    // The SSE stream ends after COMPLETED, and its last event is COMPLETED.
    const sse = await fetch(`${a.status_url}/stream?logs=1`, { headers: auth });
    expect(sse.headers.get("content-type")).toBe("text/event-stream");
    const events = (await sse.text())
      .split("\n\n")
      .filter((e) => e.startsWith("data: "))
      .map((e) => JSON.parse(e.slice(6)));
    expect(events.at(-1)).toMatchObject({
      status: "COMPLETED",
      metrics: { inference_time: expect.any(Number) },
    });
    const done = await fetch(`${a.status_url}?logs=1`, { headers: auth });
    expect(done.status).toBe(200);
    const result = await fetch(a.response_url, { headers: auth });
    expect(result.headers.get("x-fal-request-id")).toBe(a.request_id);
    const out = await body(result);
    expect(out.video).toMatchObject({ content_type: "video/mp4", file_name: "output.mp4" });
    const part = await fetch(out.video.url, { headers: { range: "bytes=0-99" } });
    expect(part.status).toBe(206);
    expect((await part.arrayBuffer()).byteLength).toBe(100);
    expect(part.headers.get("content-range")).toBe(`bytes 0-99/${out.video.file_size}`);
    const whole = await fetch(out.video.url);
    expect(Number(whole.headers.get("content-length"))).toBe(out.video.file_size);
    await whole.arrayBuffer();
  });

  it("validates like fal, inside the runner: bad input is queued and its result answers 422; 401 without a key, 404 for unknown ids, sync runs", async () => {
    // fal validates in the runner (TanStack/ai#396; fal docs, queue result: "if the model returned an error,
    // this operation returns the same error"); only a body that is not JSON is refused at submit.
    const bad = await submit({ prompt: "", duration: "7" });
    expect(bad.status).toBe(200);
    const queued = await body(bad);
    const st: { status: string; error?: string } = await untilCompleted(queued.status_url);
    expect(st.error).toBeUndefined();
    const result = await fetch(queued.response_url, { headers: auth });
    expect(result.status).toBe(422);
    expect(result.headers.get("x-fal-retryable")).toBe("false");
    const bad422 = await body(result);
    expect(bad422.detail.map((d: { loc: string[] }) => d.loc.join("."))).toEqual([
      "body.prompt",
      "body.duration",
    ]);
    const notJson = await fetch(`${emu.url}${Q}/${EP}`, {
      method: "POST",
      headers: auth,
      body: "{nope",
    });
    expect(notJson.status).toBe(422);
    const noKey = await fetch(`${emu.url}${Q}/${EP}`, { method: "POST", body: "{}" });
    expect(noKey.status).toBe(401);
    const missing = await fetch(`${emu.url}${Q}/fal-ai/minimax/requests/nope/status`, {
      headers: auth,
    });
    expect(missing.status).toBe(404);
    const cancel = await fetch(`${emu.url}${Q}/fal-ai/minimax/requests/nope/cancel`, {
      method: "PUT",
      headers: auth,
    });
    expect(cancel.status).toBe(404);
    const sync = await fetch(`${emu.url}/__host/fal.run/${EP}`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ prompt: "sync" }),
    });
    expect(sync.status).toBe(200);
    expect((await body(sync)).video.url).toContain("/files/");
    const jwks = await body(await fetch(`${emu.url}/__host/rest.fal.ai/.well-known/jwks.json`));
    expect(jwks.keys[0]).toMatchObject({ kty: "OKP", crv: "Ed25519" });
  });

  it("counts submits per input hash", async () => {
    const s = emu.stats();
    expect(s.submits.total).toBe(3);
    expect(Object.values(s.submits.byInput)).toEqual([1, 1, 1]);
    // The three that completed with a video (two queued, one sync) are billed; the invalid one is not.
    expect(s.billed).toMatchObject({ requests: 3, seconds: 22, usd: 0.99 });
    expect(s.syncRuns).toBe(1);
    expect(s.maxInProgress).toBe(1);
  });
});

describe("fal's shapes where money is decided", () => {
  it("a failed generation is COMPLETED without error; only its result fetch fails, 500 Internal Server Error; not billed", async () => {
    // fal's own fixture (fal repo tests/unit/cli/test_api.py) and TanStack/ai#396: COMPLETED is the only terminal state.
    const emu = await startTestEmulator({
      render: "shared",
      progressLatencyMs: 50,
      faults: { generationErrorCount: 1 },
    });
    try {
      const r = await body(
        await fetch(`${emu.url}${Q}/${EP}`, {
          method: "POST",
          headers: auth,
          body: JSON.stringify({ prompt: "fails" }),
        }),
      );
      // It started at once: fal answers IN_PROGRESS without a queue position (reference fal-protocol.md §14).
      expect(r.status).toBe("IN_PROGRESS");
      expect(r.queue_position).toBeUndefined();
      const st: Record<string, unknown> = await untilCompleted(r.status_url);
      expect(st).not.toHaveProperty("error");
      const res = await fetch(r.response_url, { headers: auth });
      expect(res.status).toBe(500);
      expect(await body(res)).toEqual({ detail: "Internal Server Error" });
      expect(emu.stats().billed.requests).toBe(0);
    } finally {
      await emu.close();
    }
  });

  it("speaks fal's error vocabulary: x-fal-error-type from the documented list and X-Fal-Retryable", async () => {
    // fal docs, Model APIs → request errors: runner_scheduling_failure (503), runner_incomplete_response (502), ...
    const emu = await startTestEmulator({
      render: "shared",
      faults: {
        rules: [
          { route: "submit", kind: 503, count: 1, retryAfterS: 2 },
          { route: "status", kind: 502, count: 1 },
        ],
      },
    });
    try {
      const res = await fetch(`${emu.url}${Q}/${EP}`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ prompt: "busy" }),
      });
      expect(res.status).toBe(503);
      expect(
        Object.fromEntries(
          ["x-fal-error-type", "x-fal-retryable", "retry-after"].map((h) => [
            h,
            res.headers.get(h),
          ]),
        ),
      ).toEqual({
        "x-fal-error-type": "runner_scheduling_failure",
        "x-fal-retryable": "true",
        "retry-after": "2",
      });
      const ok = await body(
        await fetch(`${emu.url}${Q}/${EP}`, {
          method: "POST",
          headers: auth,
          body: JSON.stringify({ prompt: "fine" }),
        }),
      );
      const st = await fetch(ok.status_url, { headers: auth });
      expect([st.status, st.headers.get("x-fal-error-type")]).toEqual([
        502,
        "runner_incomplete_response",
      ]);
    } finally {
      await emu.close();
    }
  });

  it("builds status/response/file URLs from the Host the client used (or --public-url), never from the bind address", async () => {
    const emu = await startTestEmulator({
      render: "shared",
      progressLatencyMs: 20,
      host: "0.0.0.0",
    });
    const pub = await startTestEmulator({
      render: "shared",
      progressLatencyMs: 20,
      publicUrl: "http://render-box.local:9000",
    });
    try {
      const port = emu.port;
      const r = await body(
        await fetch(`http://127.0.0.1:${port}${Q}/${EP}`, {
          method: "POST",
          headers: auth,
          body: JSON.stringify({ prompt: "where am i" }),
        }),
      );
      expect(r.status_url).toBe(
        `http://127.0.0.1:${port}${Q}/fal-ai/minimax/requests/${r.request_id}/status`,
      );
      const p = await body(
        await fetch(`${pub.url}${Q}/${EP}`, {
          method: "POST",
          headers: auth,
          body: JSON.stringify({ prompt: "public" }),
        }),
      );
      expect(p.response_url).toBe(
        `http://render-box.local:9000${Q}/fal-ai/minimax/requests/${p.request_id}`,
      );
    } finally {
      await emu.close();
      await pub.close();
    }
  });

  it("serves fal's Platform APIs: pricing (changeable) and requests by endpoint with their inputs; 403 when the key lacks the scope", async () => {
    const emu = await startTestEmulator({
      render: "shared",
      progressLatencyMs: 20,
      priceUsdPerSecond: 0.05,
    });
    const denied = await startTestEmulator({ render: "shared", platformApi: "forbidden" });
    try {
      const api = `${emu.url}/__host/api.fal.ai/v1`;
      const price = await body(
        await fetch(`${api}/models/pricing?endpoint_id=${EP}`, { headers: auth }),
      );
      expect(price).toEqual({
        prices: [{ endpoint_id: EP, unit_price: 0.05, unit: "second", currency: "USD" }],
        next_cursor: null,
        has_more: false,
      });
      emu.setPrice(0.06);
      expect(
        (await body(await fetch(`${api}/models/pricing?endpoint_id=${EP}`, { headers: auth })))
          .prices[0].unit_price,
      ).toBe(0.06);
      const from = new Date(Date.now() - 1000).toISOString();
      const sent = await body(
        await fetch(`${emu.url}${Q}/${EP}`, {
          method: "POST",
          headers: auth,
          body: JSON.stringify({ prompt: "list me", duration: "10" }),
        }),
      );
      const list = await body(
        await fetch(`${api}/models/requests/by-endpoint?endpoint_id=${EP}&start=${from}&limit=10`, {
          headers: auth,
        }),
      );
      expect(list).toMatchObject({
        has_more: false,
        items: [
          {
            request_id: sent.request_id,
            endpoint_id: EP,
            json_input: { prompt: "list me", duration: "10" },
          },
        ],
      });
      expect(list.items[0].sent_at).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(
        (
          await fetch(`${denied.url}/__host/api.fal.ai/v1/models/pricing?endpoint_id=${EP}`, {
            headers: auth,
          })
        ).status,
      ).toBe(403);
    } finally {
      await emu.close();
      await denied.close();
    }
  });
});

describe("webhook delivery", () => {
  it("retries a webhook the receiver refused, then delivers it signed", async () => {
    let calls = 0;
    const hook = createServer((req, res) => {
      calls++;
      req.resume();
      res.statusCode = calls === 1 ? 500 : 200;
      res.end();
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    const emu = await startTestEmulator({
      render: "shared",
      progressLatencyMs: 50,
      webhookRetryDelayMs: 20,
    });
    try {
      const port = (hook.address() as { port: number }).port;
      const res = await fetch(
        `${emu.url}${Q}/${EP}?fal_webhook=${encodeURIComponent(`http://127.0.0.1:${port}/h`)}`,
        { method: "POST", headers: auth, body: JSON.stringify({ prompt: "hook" }) },
      );
      expect(res.status).toBe(200);
      for (let i = 0; i < 200 && emu.stats().webhooks.delivered === 0; i++)
        await new Promise((r) => setTimeout(r, 25));
      expect(emu.stats().webhooks).toEqual({ delivered: 1, attempts: 2, failed: 0 });
    } finally {
      await emu.close();
      hook.close();
    }
  });
});

describe("fault flags", () => {
  it("parses rates and counts and refuses nonsense", () => {
    expect(parseFaultFlag("submit:503:0.1")).toEqual({ route: "submit", kind: 503, rate: 0.1 });
    expect(parseFaultFlag("result:drop:#2")).toEqual({ route: "result", kind: "drop", count: 2 });
    expect(() => parseFaultFlag("submit:418:0.1")).toThrow(/kind/);
    expect(() => parseFaultFlag("upload:500:0.1")).toThrow(/route/);
    expect(() => parseFaultFlag("submit:500:2")).toThrow(/amount/);
  });
});

describe("clip frames", () => {
  /** Submits one input, waits for it over the status URL and probes the clip it serves. */
  async function probeClip(render: "animatic" | "shared", prompt: string) {
    const emu = await startTestEmulator({ render, progressLatencyMs: 50 });
    try {
      const submitted = await body(
        await fetch(`${emu.url}${Q}/${EP}`, {
          method: "POST",
          headers: auth,
          body: JSON.stringify({ prompt, duration: "6" }),
        }),
      );
      while ((await fetch(submitted.status_url, { headers: auth })).status !== 200);
      const out = await body(await fetch(submitted.response_url, { headers: auth }));
      const { stdout } = await promisify(execFile)("ffprobe", [
        ...["-v", "error", "-count_packets", "-select_streams", "v:0"],
        ...["-show_entries", "stream=width,height,nb_read_packets,r_frame_rate", "-of", "json"],
        out.video.url,
      ]);
      return JSON.parse(stdout).streams[0];
    } finally {
      await emu.close();
    }
  }

  it.each([
    ["animatic", "The seed's frame size, emulator test", 1366, 768],
    ["shared", "any prompt", 320, 180],
  ] as const)(
    "renders %s clips of %j at %i×%i, 24 fps, 144 frames for 6 s",
    async (render, prompt, w, h) => {
      expect(await probeClip(render, prompt)).toEqual({
        width: w,
        height: h,
        r_frame_rate: "24/1",
        nb_read_packets: "144",
      });
    },
  );
});
