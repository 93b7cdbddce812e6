import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

import { HAILUO_ENDPOINT, emulatorHostUrl, hostFromEmulatorPath } from "@hailuo/endpoints";

export {
  EMULATED_ENDPOINTS,
  validateInput,
  type EmulatedInput,
  type InputProblem,
} from "./input-rules.js";

/** The seed endpoint: the one a caller that names none gets. */
export const EMULATED_ENDPOINT = HAILUO_ENDPOINT;

/** Hash of a normalised input: the key of "was this paid for twice?" */
export function inputHash(input: unknown): string {
  return createHash("sha256").update(JSON.stringify(input)).digest("hex").slice(0, 16);
}

/** Writes a JSON answer. */
export function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    // Room for an image sent inline as a data: URI (MiniMax takes images under 20 MB).
    if (size > 32 * 1024 * 1024) throw new Error("body too large");
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * The request's JSON body, or undefined after answering 422 as fal does for a body that is not
 * JSON at all (the one check fal makes before queueing; reference fal-protocol.md §14).
 */
export async function readJson(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
  try {
    return JSON.parse((await readBody(req)) || "{}");
  } catch {
    json(res, 422, { detail: [{ loc: ["body"], msg: "Invalid JSON", type: "json_invalid" }] });
    return undefined;
  }
}

/**
 * fal's documented error types by HTTP status (docs, Model APIs → request errors), and whether
 * fal marks them retryable with `X-Fal-Retryable`.
 */
export function falErrorHeaders(status: number): Record<string, string> {
  const type: Record<number, [string, boolean]> = {
    429: ["rate_limited", true],
    500: ["internal_error", true],
    502: ["runner_incomplete_response", true],
    503: ["runner_scheduling_failure", true],
    504: ["request_timeout", true],
    499: ["client_cancelled", false],
  };
  const t = type[status];
  return t ? { "x-fal-error-type": t[0], "x-fal-retryable": String(t[1]) } : {};
}

/**
 * The base URL a client reached us by: fal's Python client follows `status_url`/`response_url`
 * verbatim, so they must name the address the client used, not our bind address.
 */
export function baseUrlFor(req: IncomingMessage, publicUrl: string | undefined): string {
  return (publicUrl ?? `http://${req.headers.host ?? "127.0.0.1"}`).replace(/\/+$/, "");
}

/** The queue URLs of a request, as fal's submit answer gives them. */
export function requestUrls(
  base: string,
  id: string,
): { request_id: string; response_url: string; status_url: string; cancel_url: string } {
  const url = emulatorHostUrl(base, `https://queue.fal.run/fal-ai/minimax/requests/${id}`);
  return {
    request_id: id,
    response_url: url,
    status_url: `${url}/status`,
    cancel_url: `${url}/cancel`,
  };
}

/** Which fal host and path a request means: `/__host/<host>/…`, `/fal/proxy` with `x-fal-target-url`, or none. */
export function target(
  req: IncomingMessage,
  url: URL,
): { host?: string; path: string; query: URLSearchParams } | { error: [number, string] } {
  if (url.pathname === "/fal/proxy") {
    const t = req.headers["x-fal-target-url"];
    if (typeof t !== "string") return { error: [400, "Missing the x-fal-target-url header"] };
    const u = new URL(t);
    if (!/(^|\.)fal\.(run|ai|media)$/.test(u.hostname))
      return { error: [412, `Invalid target host ${u.hostname}`] };
    return { host: u.host, path: u.pathname, query: u.searchParams };
  }
  const mapped = hostFromEmulatorPath(url.pathname);
  if (mapped) return { ...mapped, query: url.searchParams };
  return { path: url.pathname, query: url.searchParams };
}
