import { createHash, generateKeyPairSync, randomUUID, sign, type KeyObject } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import rangeParser from "range-parser";
import { FaultPlan, seededRandom, type FaultConfig, type FaultRoute } from "./faults.js";
import { AnimaticRenderer } from "./render.js";

/** The one endpoint the emulator serves. */
export const EMULATED_ENDPOINT = "fal-ai/minimax/hailuo-02/standard/text-to-video";

/** Options of `createEmulator`. */
export interface EmulatorOptions {
  /** @default 0 (any free port) */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
  /** Requests IN_PROGRESS at once; the rest wait IN_QUEUE. @default 2 (a new fal account) */
  slots?: number;
  /** Least time a request spends IN_QUEUE. @default 0 */
  queueLatencyMs?: number;
  /** Least time a request spends IN_PROGRESS (the render may take longer). @default 1500 */
  progressLatencyMs?: number;
  /** Seed of the fault generator. @default 1 */
  seed?: number;
  faults?: FaultConfig;
  /** Only this key is accepted; otherwise any non-empty one. */
  apiKey?: string;
  /**
   * `animatic` renders a card per distinct input; `shared` renders one card per duration and serves it
   * to everyone (benchmarks that must not pay rendering cost). @default "animatic"
   */
  render?: "animatic" | "shared";
  /** Where rendered clips are cached. @default <tmpdir>/hailuo-emulator-cache */
  cacheDir?: string;
  /** SSE keep-alive comment interval. @default 15000 */
  keepaliveMs?: number;
  /** Webhook delivery attempts. @default 10 */
  webhookAttempts?: number;
  /** First webhook retry delay, doubled each time. @default 500 */
  webhookRetryDelayMs?: number;
  /** Called with one line per notable event (for `hailuo emulator` output). */
  log?: (line: string) => void;
}

/** Counters that prove what was (and was not) paid for. */
export interface EmulatorStats {
  submits: { total: number; byInput: Record<string, number> };
  syncRuns: number;
  statusCalls: number;
  streamCalls: number;
  resultsServed: number;
  cancels: number;
  completed: number;
  failedGenerations: number;
  faultsInjected: Record<string, number>;
  webhooks: { delivered: number; attempts: number; failed: number };
  downloads: number;
  maxInProgress: number;
  /**
   * What fal would bill: every request that completed with a video, at its seconds × price.
   * fal bills successful outputs only: never failures, cancellations or queue time
   * (https://fal.ai/pricing, "you only pay for successful outputs").
   */
  billed: { requests: number; seconds: number; usd: number; byInput: Record<string, number> };
}

/** fal's price for this endpoint at 768p, USD per generated second (fal.ai/models/…/hailuo-02/standard). */
export const EMULATED_PRICE_USD_PER_SECOND = 0.045;

/** A running emulator. */
export interface Emulator {
  /** Base URL, e.g. `http://127.0.0.1:8787`; set it as FAL_EMULATOR_URL. */
  url: string;
  port: number;
  /** A copy of the counters. */
  stats(): EmulatorStats;
  /** Replaces the fault configuration at run time. */
  setFaults(faults: FaultConfig): void;
  /** Stops the server, timers and open streams. */
  close(): Promise<void>;
}

type State = "IN_QUEUE" | "IN_PROGRESS" | "COMPLETED";

interface Log {
  message: string;
  level: string;
  source: "USER";
  timestamp: string;
}

interface Req {
  id: string;
  input: { prompt: string; duration: "6" | "10"; prompt_optimizer: boolean };
  state: State;
  logs: Log[];
  webhookUrl?: string;
  /** Earliest time it may leave IN_QUEUE (queue latency). */
  eligibleAt: number;
  startedAt?: number;
  completedAt?: number;
  outcome?: { status: number; body: unknown; error?: string; errorType?: string };
  listeners: Set<() => void>;
}

/** Hash of a normalised input: the key of "was this paid for twice?" */
export function inputHash(input: unknown): string {
  return createHash("sha256").update(JSON.stringify(input)).digest("hex").slice(0, 16);
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 1_000_000) throw new Error("body too large");
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The request's JSON body, or undefined after answering 422 like fal does for bad JSON. */
async function readJson(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
  try {
    return JSON.parse((await readBody(req)) || "{}");
  } catch {
    json(res, 422, { detail: [{ loc: ["body"], msg: "Invalid JSON", type: "json_invalid" }] });
    return undefined;
  }
}

function validate(body: unknown): { problems: { loc: string[]; msg: string; type: string }[]; input?: Req["input"] } {
  const problems: { loc: string[]; msg: string; type: string }[] = [];
  if (!body || typeof body !== "object" || Array.isArray(body)) return { problems: [{ loc: ["body"], msg: "Input should be an object", type: "model_type" }] };
  const b = body as Record<string, unknown>;
  if (typeof b.prompt !== "string") problems.push({ loc: ["body", "prompt"], msg: "Field required", type: "missing" });
  else if (b.prompt.trim().length === 0) problems.push({ loc: ["body", "prompt"], msg: "String should have at least 1 character", type: "string_too_short" });
  else if ([...b.prompt].length > 2000) problems.push({ loc: ["body", "prompt"], msg: "String should have at most 2000 characters", type: "string_too_long" });
  const duration = b.duration ?? "6";
  if (duration !== "6" && duration !== "10") problems.push({ loc: ["body", "duration"], msg: "Input should be '6' or '10'", type: "enum" });
  const opt = b.prompt_optimizer ?? true;
  if (typeof opt !== "boolean") problems.push({ loc: ["body", "prompt_optimizer"], msg: "Input should be a valid boolean", type: "bool_type" });
  if (problems.length) return { problems };
  return { problems, input: { prompt: b.prompt as string, duration: duration as "6" | "10", prompt_optimizer: opt as boolean } };
}

/**
 * Starts a fal-compatible emulator of the Hailuo queue on loopback: submit, status (polling and
 * SSE), result, cancel, sync run, webhooks signed with its own ED25519 key, real MP4 clips,
 * seedable fault injection and counters at `/__emulator/stats`.
 */
export async function createEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const {
    slots = 2,
    queueLatencyMs = 0,
    progressLatencyMs = 1500,
    keepaliveMs = 15_000,
    webhookAttempts = 10,
    webhookRetryDelayMs = 500,
    log = () => {},
  } = options;
  const renderer = new AnimaticRenderer(options.cacheDir ?? join(tmpdir(), "hailuo-emulator-cache"));
  const faults = new FaultPlan(options.faults ?? {}, seededRandom(options.seed ?? 1));
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const jwks = { keys: [{ ...publicKey.export({ format: "jwk" }), kid: "emulator-1", use: "sig", alg: "EdDSA" }] };
  const requests = new Map<string, Req>();
  const queue: Req[] = [];
  const files = new Map<string, string>();
  const timers = new Set<NodeJS.Timeout>();
  const streams = new Set<ServerResponse>();
  let inProgress = 0;
  let closed = false;
  let baseUrl = "";
  const stats: EmulatorStats = {
    submits: { total: 0, byInput: {} },
    syncRuns: 0,
    statusCalls: 0,
    streamCalls: 0,
    resultsServed: 0,
    cancels: 0,
    completed: 0,
    failedGenerations: 0,
    faultsInjected: {},
    webhooks: { delivered: 0, attempts: 0, failed: 0 },
    downloads: 0,
    maxInProgress: 0,
    billed: { requests: 0, seconds: 0, usd: 0, byInput: {} },
  };
  const bill = (r: Req) => {
    const seconds = Number(r.input.duration);
    const b = stats.billed;
    b.requests++;
    b.seconds += seconds;
    // Whole micro-dollars, so the bill adds up exactly like the report's.
    b.usd = Math.round(b.seconds * EMULATED_PRICE_USD_PER_SECOND * 1e6) / 1e6;
    const h = inputHash(r.input);
    b.byInput[h] = (b.byInput[h] ?? 0) + 1;
  };

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (!closed) fn();
    }, ms);
    timers.add(t);
  };
  const notify = (r: Req) => r.listeners.forEach((l) => l());
  const addLog = (r: Req, message: string, level = "INFO") => {
    r.logs.push({ message, level, source: "USER", timestamp: new Date().toISOString() });
    notify(r);
  };

  function pump(): void {
    while (inProgress < slots) {
      const next = queue.find((r) => r.eligibleAt <= Date.now());
      if (!next) {
        // A queued request may become eligible later (queue latency): look again then.
        if (queue.length) later(Math.max(1, Math.min(...queue.map((r) => r.eligibleAt)) - Date.now()), pump);
        return;
      }
      queue.splice(queue.indexOf(next), 1);
      start(next);
    }
  }

  function start(r: Req): void {
    inProgress++;
    stats.maxInProgress = Math.max(stats.maxInProgress, inProgress);
    r.state = "IN_PROGRESS";
    r.startedAt = Date.now();
    addLog(r, `Starting generation (${r.input.duration}s, optimizer ${r.input.prompt_optimizer ? "on" : "off"})`);
    queue.forEach((q) => notify(q));
    const spec =
      options.render === "shared"
        ? { prompt: `Emulated clip (${r.input.duration}s)`, durationS: Number(r.input.duration) }
        : { prompt: r.input.prompt, durationS: Number(r.input.duration), label: `hailuo-02 emulator · ${r.input.duration}s` };
    const rendered = faults.violatesPolicy(r.input.prompt) ? Promise.resolve("") : renderer.render(spec);
    later(progressLatencyMs / 2, () => r.state === "IN_PROGRESS" && addLog(r, "Generating frames: 50%"));
    const minDone = new Promise<void>((resolve) => later(progressLatencyMs, resolve));
    Promise.all([rendered, minDone]).then(
      ([file]) => finish(r, file),
      (error: Error) => finish(r, "", `render failed: ${error.message}`),
    ).catch((error: Error) => log(`finishing ${r.id} failed: ${error.message}`));
  }

  async function finish(r: Req, file: string, renderError?: string): Promise<void> {
    if (r.state === "COMPLETED" || closed) return;
    let outcome: NonNullable<Req["outcome"]>;
    if (faults.violatesPolicy(r.input.prompt)) {
      outcome = {
        status: 422,
        body: { detail: [{ loc: ["body", "prompt"], msg: "The prompt was flagged by content moderation.", type: "content_policy_violation", ctx: { categories: ["emulated"] } }] },
        error: "Unprocessable Entity: content policy violation",
        errorType: "content_policy_violation",
      };
    } else if (renderError || faults.generationFails(r.input.prompt)) {
      stats.failedGenerations++;
      const detail = renderError ?? "Generation failed (injected fault)";
      outcome = { status: 500, body: { detail, error_type: "internal_server_error" }, error: detail, errorType: "internal_server_error" };
    } else {
      const id = randomUUID().replaceAll("-", "");
      const { size } = await stat(file);
      files.set(id, file);
      outcome = {
        status: 200,
        body: { video: { url: `${baseUrl}/files/${id}/output.mp4`, content_type: "video/mp4", file_name: "output.mp4", file_size: size } },
      };
    }
    // A cancel may have landed while we looked at the file.
    if ((r.state as State) === "COMPLETED" || closed) return;
    inProgress--;
    r.outcome = outcome;
    r.state = "COMPLETED";
    r.completedAt = Date.now();
    stats.completed++;
    if (outcome.status === 200) bill(r);
    addLog(r, outcome.error ? `Generation ended with an error: ${outcome.error}` : "Generation complete", outcome.error ? "ERROR" : "INFO");
    if (r.webhookUrl) deliverWebhook(r, 0);
    pump();
  }

  function urls(id: string) {
    const base = `${baseUrl}/__host/queue.fal.run/fal-ai/minimax/requests/${id}`;
    return { request_id: id, response_url: base, status_url: `${base}/status`, cancel_url: `${base}/cancel` };
  }

  function statusBody(r: Req, withLogs: boolean, logs: Log[] = r.logs): Record<string, unknown> {
    const body: Record<string, unknown> = { status: r.state, ...urls(r.id) };
    if (r.state === "IN_QUEUE") body.queue_position = queue.indexOf(r);
    else body.logs = withLogs ? logs : null;
    if (r.state === "COMPLETED") {
      body.metrics = { inference_time: ((r.completedAt ?? 0) - (r.startedAt ?? r.completedAt ?? 0)) / 1000 };
      if (r.outcome?.error) {
        body.error = r.outcome.error;
        body.error_type = r.outcome.errorType;
      }
    }
    return body;
  }

  function deliverWebhook(r: Req, attempt: number): void {
    const o = r.outcome!;
    const payload =
      o.status === 200
        ? { request_id: r.id, gateway_request_id: r.id, status: "OK", payload: o.body }
        : { request_id: r.id, gateway_request_id: r.id, status: "ERROR", error: `Invalid status code: ${o.status}`, payload: o.body };
    const raw = JSON.stringify(payload);
    const ts = String(Math.floor(Date.now() / 1000));
    const userId = "emulator-user";
    const msg = [r.id, userId, ts, createHash("sha256").update(raw).digest("hex")].join("\n");
    const signature = sign(null, Buffer.from(msg), privateKey as KeyObject).toString("hex");
    stats.webhooks.attempts++;
    fetch(r.webhookUrl!, {
      method: "POST",
      body: raw,
      headers: {
        "content-type": "application/json",
        "x-fal-webhook-request-id": r.id,
        "x-fal-webhook-user-id": userId,
        "x-fal-webhook-timestamp": ts,
        "x-fal-webhook-signature": signature,
      },
      signal: AbortSignal.timeout(15_000),
    }).then(
      (res) => {
        if (res.ok) {
          stats.webhooks.delivered++;
          log(`webhook ${r.id} delivered`);
        } else retryWebhook(r, attempt, `HTTP ${res.status}`);
      },
      (e: Error) => retryWebhook(r, attempt, e.message),
    );
  }

  function retryWebhook(r: Req, attempt: number, why: string): void {
    if (attempt + 1 >= webhookAttempts) {
      stats.webhooks.failed++;
      log(`webhook ${r.id} gave up after ${attempt + 1} attempts: ${why}`);
      return;
    }
    later(webhookRetryDelayMs * 2 ** attempt, () => deliverWebhook(r, attempt + 1));
  }

  function injected(route: FaultRoute, res: ServerResponse): "drop" | boolean {
    const rule = faults.next(route);
    if (!rule) return false;
    const key = `${route}:${rule.kind}`;
    stats.faultsInjected[key] = (stats.faultsInjected[key] ?? 0) + 1;
    if (rule.kind === "drop") return "drop";
    const headers: Record<string, string> = { "x-fal-error-type": rule.kind === 429 ? "rate_limited" : "runner_scheduling_failure" };
    if (rule.retryAfterS !== undefined) headers["retry-after"] = String(rule.retryAfterS);
    json(res, rule.kind, { detail: `Injected fault ${rule.kind}`, error_type: headers["x-fal-error-type"] }, headers);
    return true;
  }

  function submit(body: unknown, webhookUrl: string | undefined, res: ServerResponse, route: "submit" | "sync"): Req | undefined {
    const { problems, input } = validate(body);
    if (!input) {
      json(res, 422, { detail: problems });
      return undefined;
    }
    const id = randomUUID();
    const r: Req = { id, input, state: "IN_QUEUE", logs: [], webhookUrl, listeners: new Set(), eligibleAt: Date.now() + queueLatencyMs };
    requests.set(id, r);
    if (route === "submit") {
      stats.submits.total++;
      const h = inputHash(input);
      stats.submits.byInput[h] = (stats.submits.byInput[h] ?? 0) + 1;
    } else stats.syncRuns++;
    queue.push(r);
    log(`${route} ${id} (${input.duration}s) "${input.prompt.slice(0, 50)}"`);
    pump();
    return r;
  }

  function stream(r: Req, withLogs: boolean, res: ServerResponse): void {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive", "x-fal-request-id": r.id });
    streams.add(res);
    let sentLogs = 0;
    let lastKey = "";
    const send = () => {
      const fresh = r.logs.slice(sentLogs);
      const key = `${r.state}:${r.state === "IN_QUEUE" ? queue.indexOf(r) : ""}:${r.logs.length}:${r.outcome ? 1 : 0}`;
      if (key === lastKey) return;
      if (r.state === "COMPLETED" && !r.outcome) return;
      lastKey = key;
      sentLogs = r.logs.length;
      res.write(`data: ${JSON.stringify(statusBody(r, withLogs, fresh))}\n\n`);
      if (r.state === "COMPLETED") end();
    };
    const keepalive = setInterval(() => res.write(": keepalive\n\n"), keepaliveMs);
    const end = () => {
      clearInterval(keepalive);
      r.listeners.delete(send);
      streams.delete(res);
      res.end();
    };
    r.listeners.add(send);
    res.on("close", () => {
      clearInterval(keepalive);
      r.listeners.delete(send);
      streams.delete(res);
    });
    send();
  }

  function cancel(r: Req, res: ServerResponse): void {
    stats.cancels++;
    if (r.state === "COMPLETED") return json(res, 400, { status: "ALREADY_COMPLETED" });
    if (r.state === "IN_QUEUE") queue.splice(queue.indexOf(r), 1);
    else inProgress--;
    r.state = "COMPLETED";
    r.completedAt = Date.now();
    r.outcome = { status: 499, body: { detail: "Request cancelled by the client." }, error: "Request cancelled by the client.", errorType: "request_cancelled" };
    addLog(r, "Request cancelled by the client.", "WARN");
    json(res, 202, { status: "CANCELLATION_REQUESTED" });
    pump();
  }

  async function serveFile(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const file = files.get(id);
    if (!file) return json(res, 404, { detail: "File not found" });
    const { size } = await stat(file);
    const headers: Record<string, string | number> = { "content-type": "video/mp4", "accept-ranges": "bytes" };
    let range: { start: number; end: number } | undefined;
    if (req.headers.range) {
      const parsed = rangeParser(size, req.headers.range, { combine: true });
      if (parsed === -1) {
        res.writeHead(416, { "content-range": `bytes */${size}` });
        return void res.end();
      }
      if (parsed !== -2 && parsed.length === 1) range = parsed[0];
    }
    if (req.method === "GET") stats.downloads++;
    if (range) {
      res.writeHead(206, { ...headers, "content-length": range.end - range.start + 1, "content-range": `bytes ${range.start}-${range.end}/${size}` });
    } else res.writeHead(200, { ...headers, "content-length": size });
    if (req.method === "HEAD") return void res.end();
    createReadStream(file, range ? { start: range.start, end: range.end } : {}).pipe(res);
  }

  function authorised(req: IncomingMessage, res: ServerResponse): boolean {
    const auth = req.headers.authorization ?? "";
    const m = /^(Key|Bearer)\s+(.+)$/.exec(auth);
    if (!m || (options.apiKey !== undefined && m[2] !== options.apiKey)) {
      json(res, 401, { detail: m ? "Invalid API key" : "Missing or malformed Authorization header" });
      return false;
    }
    return true;
  }

  async function queueRoute(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, method: string): Promise<void> {
    if (!authorised(req, res)) return;
    const parts = path.split("/").filter(Boolean);
    const nsOffset = parts[0] === "workflows" || parts[0] === "comfy" ? 1 : 0;
    if (parts[2 + nsOffset] === "requests") {
      const id = parts[3 + nsOffset] ?? "";
      const rest = parts.slice(4 + nsOffset).join("/");
      const r = requests.get(id);
      const withLogs = ["1", "true"].includes(query.get("logs") ?? "");
      if (method === "PUT" && rest === "cancel") return r ? cancel(r, res) : json(res, 404, { status: "NOT_FOUND" });
      if (method !== "GET") return json(res, 405, { detail: "Method not allowed" });
      const route = rest === "status" ? "status" : rest === "status/stream" ? "stream" : rest === "" ? "result" : undefined;
      if (!route) return json(res, 404, { detail: "Not found" });
      if (route === "status") stats.statusCalls++;
      if (route === "stream") stats.streamCalls++;
      // A fault answers instead of the route: an HTTP error, or a connection cut with no answer.
      const fault = injected(route, res);
      if (fault === "drop") return void res.socket?.destroy();
      if (fault) return;
      if (!r) return json(res, 404, { detail: `Request ${id} not found` });
      if (route === "status") return json(res, r.state === "COMPLETED" ? 200 : 202, statusBody(r, withLogs), { "x-fal-request-id": id });
      if (route === "stream") return stream(r, withLogs, res);
      if (r.state !== "COMPLETED" || !r.outcome) return json(res, 400, { detail: "Request is still in progress" }, { "x-fal-request-id": id });
      stats.resultsServed++;
      const headers: Record<string, string> = { "x-fal-request-id": id };
      if (r.outcome.errorType) headers["x-fal-error-type"] = r.outcome.errorType;
      return json(res, r.outcome.status, r.outcome.body, headers);
    }
    if (method !== "POST") return json(res, 405, { detail: "Method not allowed" });
    if (parts.join("/") !== EMULATED_ENDPOINT) return json(res, 404, { detail: `Application '${parts.join("/")}' not found in this emulator` });
    const f = injected("submit", res);
    if (f === true) return;
    const body = await readJson(req, res);
    if (body === undefined) return;
    const r = submit(body, query.get("fal_webhook") ?? undefined, res, "submit");
    if (!r) return;
    // A dropped answer: the request is queued (and would be billed) but the client never hears of it.
    if (f === "drop") return void res.socket?.destroy();
    json(res, 200, { status: "IN_QUEUE", ...urls(r.id), queue_position: Math.max(0, queue.indexOf(r)) }, { "x-fal-request-id": r.id });
  }

  async function syncRoute(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (!authorised(req, res)) return;
    if (req.method !== "POST" || path.replace(/^\/+|\/+$/g, "") !== EMULATED_ENDPOINT) return json(res, 404, { detail: "Not found" });
    const body = await readJson(req, res);
    if (body === undefined) return;
    const r = submit(body, undefined, res, "sync");
    if (!r) return;
    await new Promise<void>((resolve) => {
      const check = () => {
        if (r.outcome) {
          r.listeners.delete(check);
          resolve();
        }
      };
      r.listeners.add(check);
      check();
    });
    json(res, r.outcome!.status, r.outcome!.body, { "x-fal-request-id": r.id });
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://emulator");
    const method = (req.method ?? "GET").toUpperCase();
    let host: string | undefined;
    let path = url.pathname;
    let query = url.searchParams;
    if (url.pathname === "/fal/proxy") {
      const target = req.headers["x-fal-target-url"];
      if (typeof target !== "string") return json(res, 400, { detail: "Missing the x-fal-target-url header" });
      const t = new URL(target);
      if (!/(^|\.)fal\.(run|ai|media)$/.test(t.hostname)) return json(res, 412, { detail: `Invalid target host ${t.hostname}` });
      host = t.host;
      path = t.pathname;
      query = t.searchParams;
    } else if (url.pathname.startsWith("/__host/")) {
      const [, , h, ...rest] = url.pathname.split("/");
      host = h;
      path = `/${rest.join("/")}`;
    }
    if (host === undefined) {
      if (path === "/.well-known/jwks.json") return json(res, 200, jwks);
      if (path === "/__emulator/stats") return json(res, 200, stats);
      if (path === "/__emulator/health") return json(res, 200, { ok: true });
      const file = /^\/files\/([0-9a-f]+)\/output\.mp4$/.exec(path);
      if (file && (method === "GET" || method === "HEAD")) return serveFile(req, res, file[1]!);
      return json(res, 404, { detail: "Not found" });
    }
    if (host === "queue.fal.run") return queueRoute(req, res, path, query, method);
    if (host === "fal.run") return syncRoute(req, res, path);
    if ((host === "rest.fal.ai" || host === "rest.alpha.fal.ai") && path === "/.well-known/jwks.json") return json(res, 200, jwks);
    return json(res, 404, { detail: `Host ${host} path ${path} is not emulated` });
  }

  const server = createServer((req, res) => {
    route(req, res).catch((error: Error) => {
      if (!res.headersSent) json(res, 500, { detail: `emulator error: ${error.message}` });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  baseUrl = `http://${address.includes(":") ? `[${address}]` : address}:${port}`;

  return {
    url: baseUrl,
    port,
    stats: () => structuredClone(stats),
    setFaults: (f) => faults.set(f),
    async close() {
      closed = true;
      timers.forEach(clearTimeout);
      timers.clear();
      streams.forEach((s) => s.end());
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
