import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import rangeParser from "range-parser";
import type { FaultPlan } from "./faults.js";
import type { RequestStore } from "./request-store.js";
import type { EmulatorStats } from "./stats.js";
import { json } from "./wire.js";

/** Serves a finished clip like fal's CDN: GET and HEAD, byte ranges, exact sizes; `faults` may cut or stall a whole-file GET. */
export async function serveFile(
  store: RequestStore,
  stats: EmulatorStats,
  req: IncomingMessage,
  res: ServerResponse,
  id: string,
  faults?: FaultPlan,
): Promise<void> {
  const file = store.files.get(id);
  if (!file) return json(res, 404, { detail: "File not found" });
  const { size } = await stat(file);
  const headers: Record<string, string | number> = {
    "content-type": "video/mp4",
    "accept-ranges": "bytes",
  };
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
  const fault = req.method === "GET" && !range ? faults?.nextFile() : undefined;
  if (fault) {
    const key = `file:${fault.kind}`;
    stats.faultsInjected[key] = (stats.faultsInjected[key] ?? 0) + 1;
    const sent = Math.min(size - 1, fault.bytes ?? Math.floor(size / 3));
    // short: no Content-Length, so the body ending early looks like the whole file.
    res.writeHead(200, fault.kind === "short" ? headers : { ...headers, "content-length": size });
    const body = createReadStream(file, { start: 0, end: sent - 1 });
    if (fault.kind === "short") return void body.pipe(res);
    // stall: the bytes go out, then nothing until the client gives up (or the emulator closes).
    return void body.pipe(res, { end: false });
  }
  if (range)
    res.writeHead(206, {
      ...headers,
      "content-length": range.end - range.start + 1,
      "content-range": `bytes ${range.start}-${range.end}/${size}`,
    });
  else res.writeHead(200, { ...headers, "content-length": size });
  if (req.method === "HEAD") return void res.end();
  createReadStream(file, range ? { start: range.start, end: range.end } : {}).pipe(res);
}
