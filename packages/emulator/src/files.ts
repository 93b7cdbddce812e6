import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import rangeParser from "range-parser";
import type { RequestStore } from "./request-store.js";
import type { EmulatorStats } from "./stats.js";
import { json } from "./wire.js";

/** Serves a finished clip like fal's CDN: GET and HEAD, byte ranges, exact sizes. */
export async function serveFile(store: RequestStore, stats: EmulatorStats, req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
  const file = store.files.get(id);
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
  if (range) res.writeHead(206, { ...headers, "content-length": range.end - range.start + 1, "content-range": `bytes ${range.start}-${range.end}/${size}` });
  else res.writeHead(200, { ...headers, "content-length": size });
  if (req.method === "HEAD") return void res.end();
  createReadStream(file, range ? { start: range.start, end: range.end } : {}).pipe(res);
}
