import type { IncomingMessage, ServerResponse } from "node:http";
import type { FaultPlan, FaultRoute } from "./faults.js";
import type { Behaviour, EmulatedRequest, RequestStore } from "./request-store.js";
import type { EmulatorStats } from "./stats.js";
import {
  EMULATED_ENDPOINTS,
  falErrorHeaders,
  json,
  readJson,
  requestUrls,
  validateInput,
} from "./wire.js";

/** What the queue routes need from the emulator. */
export interface QueueContext {
  store: RequestStore;
  faults: FaultPlan;
  stats: EmulatorStats;
  behaviour: Behaviour;
  keepaliveMs: number;
  streams: Set<ServerResponse>;
  /** The base URL this client reached us by. */
  base: string;
}

/** The result body of a completed request, with file URLs on the client's base URL. */
export function resultBody(r: EmulatedRequest, base: string): unknown {
  const o = r.outcome!;
  if (!o.fileId) return o.body;
  const video = (o.body as { video: Record<string, unknown> }).video;
  return { video: { url: `${base}/files/${o.fileId}/output.mp4`, ...video } };
}

function statusBody(
  c: QueueContext,
  r: EmulatedRequest,
  withLogs: boolean,
  logs = r.logs,
): Record<string, unknown> {
  const body: Record<string, unknown> = { status: r.state, ...requestUrls(c.base, r.id) };
  if (r.state === "IN_QUEUE") body.queue_position = c.store.position(r) ?? 0;
  else body.logs = withLogs ? logs : null;
  if (r.state === "COMPLETED") {
    body.metrics = {
      inference_time: ((r.completedAt ?? 0) - (r.startedAt ?? r.completedAt ?? 0)) / 1000,
    };
    // Only gateway-level errors appear here; an application failure shows in the result fetch alone.
    if (r.outcome?.statusError) {
      body.error = r.outcome.statusError.error;
      body.error_type = r.outcome.statusError.errorType;
    }
  }
  return body;
}

/** An injected fault answers instead of the route: an HTTP error, or a connection cut with no answer. */
function injected(c: QueueContext, route: FaultRoute, res: ServerResponse): "drop" | boolean {
  const rule = c.faults.next(route);
  if (!rule) return false;
  const key = `${route}:${rule.kind}`;
  c.stats.faultsInjected[key] = (c.stats.faultsInjected[key] ?? 0) + 1;
  if (rule.kind === "drop") return "drop";
  const headers = falErrorHeaders(rule.kind);
  if (rule.retryAfterS !== undefined) headers["retry-after"] = String(rule.retryAfterS);
  json(
    res,
    rule.kind,
    { detail: `Injected fault ${rule.kind}`, error_type: headers["x-fal-error-type"] },
    headers,
  );
  return true;
}

function stream(c: QueueContext, r: EmulatedRequest, withLogs: boolean, res: ServerResponse): void {
  res.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-fal-request-id": r.id,
  });
  c.streams.add(res);
  let sentLogs = 0;
  let lastKey = "";
  const send = () => {
    const key = `${r.state}:${c.store.position(r) ?? ""}:${r.logs.length}:${r.outcome ? 1 : 0}`;
    if (key === lastKey || (r.state === "COMPLETED" && !r.outcome)) return;
    lastKey = key;
    const fresh = r.logs.slice(sentLogs);
    sentLogs = r.logs.length;
    res.write(`data: ${JSON.stringify(statusBody(c, r, withLogs, fresh))}\n\n`);
    if (r.state === "COMPLETED") end();
  };
  const keepalive = setInterval(() => res.write(": keepalive\n\n"), c.keepaliveMs);
  const detach = () => {
    clearInterval(keepalive);
    r.listeners.delete(send);
    c.streams.delete(res);
  };
  const end = () => {
    detach();
    res.end();
  };
  r.listeners.add(send);
  res.on("close", detach);
  send();
}

/** `POST /{endpoint}` (submit, any endpoint of the records) and `/requests/{id}[/status[/stream]|/cancel]` on queue.fal.run. */
export async function queueRoute(
  c: QueueContext,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  query: URLSearchParams,
  method: string,
): Promise<void> {
  const parts = path.split("/").filter(Boolean);
  const nsOffset = parts[0] === "workflows" || parts[0] === "comfy" ? 1 : 0;
  if (parts[2 + nsOffset] === "requests") {
    const id = parts[3 + nsOffset] ?? "";
    const rest = parts.slice(4 + nsOffset).join("/");
    const r = c.store.requests.get(id);
    const withLogs = ["1", "true"].includes(query.get("logs") ?? "");
    if (method === "PUT" && rest === "cancel") {
      if (!r) return json(res, 404, { status: "NOT_FOUND" });
      const answer = c.store.cancel(r);
      return json(res, answer.status, answer.body);
    }
    if (method !== "GET") return json(res, 405, { detail: "Method not allowed" });
    const route =
      rest === "status"
        ? "status"
        : rest === "status/stream"
          ? "stream"
          : rest === ""
            ? "result"
            : undefined;
    if (!route) return json(res, 404, { detail: "Not found" });
    if (route === "status") c.stats.statusCalls++;
    if (route === "stream") c.stats.streamCalls++;
    const fault = injected(c, route, res);
    if (fault === "drop") return void res.socket?.destroy();
    if (fault) return;
    if (!r) return json(res, 404, { detail: `Request ${id} not found` });
    if (route === "status")
      return json(res, r.state === "COMPLETED" ? 200 : 202, statusBody(c, r, withLogs), {
        "x-fal-request-id": id,
      });
    if (route === "stream") return stream(c, r, withLogs, res);
    if (r.state !== "COMPLETED" || !r.outcome)
      return json(res, 400, { detail: "Request is still in progress" }, { "x-fal-request-id": id });
    c.stats.resultsServed++;
    const headers: Record<string, string> = {
      "x-fal-request-id": id,
      ...(r.outcome.status === 200 ? {} : falErrorHeaders(r.outcome.status)),
    };
    if (r.outcome.status === 422) headers["x-fal-retryable"] = "false";
    return json(res, r.outcome.status, resultBody(r, c.base), headers);
  }
  if (method !== "POST") return json(res, 405, { detail: "Method not allowed" });
  const endpoint = parts.join("/");
  if (!EMULATED_ENDPOINTS.includes(endpoint))
    return json(res, 404, {
      detail: `Application '${endpoint}' not found in this emulator`,
    });
  const f = injected(c, "submit", res);
  if (f === true) return;
  const body = await readJson(req, res);
  if (body === undefined) return;
  if (c.behaviour.failureShape === "status-error") {
    const { problems } = validateInput(body, endpoint);
    if (problems.length) return json(res, 422, { detail: problems });
  }
  const r = c.store.add(body, query.get("fal_webhook") ?? undefined, "submit", endpoint);
  // A dropped answer: the request is queued (and will be billed) but the client never hears of it.
  if (f === "drop") return void res.socket?.destroy();
  // A request that starts at once is answered IN_PROGRESS without a queue position (reference §14).
  const position = c.store.position(r);
  json(
    res,
    200,
    {
      status: position === undefined ? "IN_PROGRESS" : "IN_QUEUE",
      ...requestUrls(c.base, r.id),
      ...(position === undefined ? {} : { queue_position: position }),
    },
    { "x-fal-request-id": r.id },
  );
}

/** `POST https://fal.run/{endpoint}`: runs and answers in one call (fal does not retry these). */
export async function syncRoute(
  c: QueueContext,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  const endpoint = path.replace(/^\/+|\/+$/g, "");
  if (req.method !== "POST" || !EMULATED_ENDPOINTS.includes(endpoint))
    return json(res, 404, { detail: "Not found" });
  const body = await readJson(req, res);
  if (body === undefined) return;
  const r = c.store.add(body, undefined, "sync", endpoint);
  await new Promise<void>((resolve) => {
    const check = () => {
      if (!r.outcome) return;
      r.listeners.delete(check);
      resolve();
    };
    r.listeners.add(check);
    check();
  });
  json(res, r.outcome!.status, resultBody(r, c.base), { "x-fal-request-id": r.id });
}
