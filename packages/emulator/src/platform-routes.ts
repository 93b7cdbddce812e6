import type { ServerResponse } from "node:http";
import type { RequestStore } from "./request-store.js";
import type { EmulatorStats } from "./stats.js";
import { findEndpoint } from "@hailuo/endpoints";
import { json } from "./wire.js";

/** What the Platform API routes need. */
export interface PlatformContext {
  store: RequestStore;
  stats: EmulatorStats;
  /** The account's unit price of an endpoint, in its record's unit. */
  unitPriceUsd: (endpointId: string) => number;
  /** `forbidden` answers 403 as for a key without the scope (fal docs: some Platform APIs need an admin key). */
  platformApi: "on" | "forbidden";
  resultBodyOf: (id: string) => unknown;
}

function endpointIds(query: URLSearchParams): string[] {
  return query
    .getAll("endpoint_id")
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter(Boolean);
}

/**
 * fal's Platform APIs on api.fal.ai/v1 (reference fal-protocol.md §14, from fal's docs):
 * `GET /models/pricing?endpoint_id=…` → `{prices:[{endpoint_id, unit_price, unit, currency}], next_cursor, has_more}`;
 * `GET /models/requests/by-endpoint?endpoint_id=&start=&end=&limit=&cursor=` → `{items:[{request_id, endpoint_id,
 * sent_at, started_at, ended_at, status_code, duration, json_input, json_output}], next_cursor, has_more}`.
 */
export function platformRoute(
  c: PlatformContext,
  res: ServerResponse,
  path: string,
  query: URLSearchParams,
  method: string,
): void {
  c.stats.platformCalls++;
  if (c.platformApi === "forbidden")
    return json(res, 403, { detail: "This API key lacks the scope for the Platform API." });
  if (method !== "GET") return json(res, 405, { detail: "Method not allowed" });
  if (path === "/v1/models/pricing") {
    const ids = endpointIds(query);
    if (!ids.length)
      return json(res, 422, {
        detail: [{ loc: ["query", "endpoint_id"], msg: "Field required", type: "missing" }],
      });
    // Each endpoint in its record's unit: "second" (Hailuo 02) or "video" (Hailuo 2.3).
    const prices = ids.flatMap((endpoint_id) => {
      const record = findEndpoint(endpoint_id);
      if (!record) return [];
      const unit_price = c.unitPriceUsd(endpoint_id);
      return [{ endpoint_id, unit_price, unit: record.price.unit, currency: "USD" }];
    });
    return json(res, 200, { prices, next_cursor: null, has_more: false });
  }
  if (path === "/v1/models/requests/by-endpoint") {
    const [endpoint] = endpointIds(query);
    if (!endpoint)
      return json(res, 422, {
        detail: [{ loc: ["query", "endpoint_id"], msg: "Field required", type: "missing" }],
      });
    // start defaults to 24 h ago (fal docs); times are ISO 8601.
    const start = Date.parse(query.get("start") ?? "") || Date.now() - 86_400_000;
    const end = Date.parse(query.get("end") ?? "") || Date.now() + 1000;
    const limit = Math.min(100, Math.max(1, Number(query.get("limit") ?? 50) || 50));
    const offset = Number(query.get("cursor") ?? 0) || 0;
    const all = [...c.store.requests.values()]
      .filter((r) => r.endpoint === endpoint && r.sentAt >= start && r.sentAt <= end)
      .sort((a, b) => a.sentAt - b.sentAt);
    const page = all.slice(offset, offset + limit);
    const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());
    const items = page.map((r) => ({
      request_id: r.id,
      endpoint_id: r.endpoint,
      sent_at: iso(r.sentAt),
      started_at: iso(r.startedAt),
      ended_at: iso(r.completedAt),
      status_code: r.outcome?.status ?? null,
      duration:
        r.completedAt !== undefined && r.startedAt !== undefined
          ? (r.completedAt - r.startedAt) / 1000
          : null,
      json_input: r.raw,
      json_output: r.outcome ? c.resultBodyOf(r.id) : null,
    }));
    const more = offset + limit < all.length;
    return json(res, 200, {
      items,
      next_cursor: more ? String(offset + limit) : null,
      has_more: more,
    });
  }
  return json(res, 404, { detail: `Platform API ${path} is not emulated` });
}
