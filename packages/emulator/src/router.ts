import type { IncomingMessage, ServerResponse } from "node:http";
import type { EmulatorOptions } from "./emulator.js";
import type { FaultPlan } from "./faults.js";
import { serveFile } from "./files.js";
import { platformRoute } from "./platform-routes.js";
import { queueRoute, resultBody, syncRoute, type QueueContext } from "./queue-routes.js";
import type { Behaviour, RequestStore } from "./request-store.js";
import { FAL_CDN_HOST, cdnRoute, initiateUpload, type UploadStore } from "./storage-routes.js";
import type { EmulatorStats } from "./stats.js";
import { baseUrlFor, json, target } from "./wire.js";

/** What the router dispatches to. */
export interface RouterContext {
  store: RequestStore;
  faults: FaultPlan;
  stats: EmulatorStats;
  behaviour: Behaviour;
  streams: Set<ServerResponse>;
  jwks: unknown;
  unitPriceUsd: (endpointId: string) => number;
  uploads: UploadStore;
  options: EmulatorOptions;
}

/** fal accepts `Authorization: Key …` (and Bearer); an emulator started with a key accepts only that one. */
function authorised(
  req: IncomingMessage,
  res: ServerResponse,
  apiKey: string | undefined,
): boolean {
  const m = /^(Key|Bearer)\s+(.+)$/.exec(req.headers.authorization ?? "");
  if (!m || (apiKey !== undefined && m[2] !== apiKey)) {
    json(res, 401, { detail: m ? "Invalid API key" : "Missing or malformed Authorization header" });
    return false;
  }
  return true;
}

/** Routes a request by the fal host it means: queue, sync run, Platform API, JWKS, files, and the emulator's own endpoints. */
export function createRouter(
  c: RouterContext,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { store, stats, options } = c;
  return async (req, res) => {
    const url = new URL(req.url ?? "/", "http://emulator");
    const method = (req.method ?? "GET").toUpperCase();
    const t = target(req, url);
    if ("error" in t) return json(res, t.error[0], { detail: t.error[1] });
    const base = baseUrlFor(req, options.publicUrl);
    if (t.host === undefined) {
      if (t.path === "/.well-known/jwks.json") return json(res, 200, c.jwks);
      if (t.path === "/__emulator/stats") return json(res, 200, stats);
      if (t.path === "/__emulator/health") return json(res, 200, { ok: true });
      const file = /^\/files\/([0-9a-f]+)\/output\.mp4$/.exec(t.path);
      if (file && (method === "GET" || method === "HEAD"))
        return serveFile(store, stats, req, res, file[1]!, c.faults);
      return json(res, 404, { detail: "Not found" });
    }
    // fal serves its JWKS from both REST hosts (reference fal-protocol.md §14).
    if (
      (t.host === "rest.fal.ai" || t.host === "rest.alpha.fal.ai") &&
      t.path === "/.well-known/jwks.json"
    )
      return json(res, 200, c.jwks);
    // The CDN answers without a key: upload URLs are signed, file URLs public (fal-js storage.ts
    // PUTs with its plain fetch, no Authorization header).
    if (t.host === FAL_CDN_HOST) return cdnRoute(c.uploads, stats, req, res, t.path, method);
    if (!authorised(req, res, options.apiKey)) return;
    if (
      (t.host === "rest.fal.ai" || t.host === "rest.alpha.fal.ai") &&
      t.path === "/storage/upload/initiate" &&
      method === "POST"
    )
      return initiateUpload(c.uploads, stats, req, res, base);
    const q: QueueContext = {
      store,
      faults: c.faults,
      stats,
      behaviour: c.behaviour,
      keepaliveMs: options.keepaliveMs ?? 15_000,
      streams: c.streams,
      base,
    };
    if (t.host === "queue.fal.run") return queueRoute(q, req, res, t.path, t.query, method);
    if (t.host === "fal.run") return syncRoute(q, req, res, t.path);
    if (t.host === "api.fal.ai") {
      const resultBodyOf = (id: string) => resultBody(store.requests.get(id)!, base);
      return platformRoute(
        {
          store,
          stats,
          unitPriceUsd: c.unitPriceUsd,
          platformApi: options.platformApi ?? "on",
          resultBodyOf,
        },
        res,
        t.path,
        t.query,
        method,
      );
    }
    return json(res, 404, { detail: `Host ${t.host} path ${t.path} is not emulated` });
  };
}
