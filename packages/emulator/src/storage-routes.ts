import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, rm, stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { emulatorHostUrl } from "@hailuo/endpoints";
import type { EmulatorStats } from "./stats.js";
import { json, readJson } from "./wire.js";

/** The CDN host of uploaded files (fal docs, fal CDN: `https://v3.fal.media/files/…`). */
export const FAL_CDN_HOST = "v3.fal.media";
/** fal-js sends files over 90 MB as a multipart upload, which the emulator does not serve. */
const MAX_UPLOAD_BYTES = 90 * 1024 * 1024;

interface Upload {
  id: string;
  contentType: string;
  fileName: string;
  path: string;
  done: boolean;
}

/** Files uploaded through the storage API, kept in a folder of this emulator's own. */
export class UploadStore {
  private readonly uploads = new Map<string, Upload>();
  constructor(private readonly dir: string) {}

  /** Starts an upload; the bytes come with a PUT to its upload URL. */
  initiate(contentType: string, fileName: string): Upload {
    const id = randomUUID().replaceAll("-", "");
    const upload = { id, contentType, fileName, path: join(this.dir, id), done: false };
    this.uploads.set(id, upload);
    return upload;
  }

  get(id: string): Upload | undefined {
    return this.uploads.get(id);
  }

  /** The bytes of an uploaded file named by its file URL (on any base URL), or undefined. */
  async bytesForUrl(url: string): Promise<Buffer | undefined> {
    const m = /\/__host\/v3\.fal\.media\/files\/emulator\/([0-9a-f]{32})\//.exec(url);
    const upload = m ? this.uploads.get(m[1]!) : undefined;
    return upload?.done ? readFile(upload.path) : undefined;
  }

  /** Removes every uploaded file. */
  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * fal's storage upload as `@fal-ai/client` 1.10.1 drives it (fal-js libs/client/src/storage.ts):
 * `POST https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3` with
 * `{content_type, file_name}` (authorised, through the client's middleware) answers
 * `{upload_url, file_url}`; the client then PUTs the bytes to `upload_url` with its plain fetch
 * (no middleware, no key), so that URL names this emulator directly; `file_url` is where the file
 * is served, as fal's CDN does. The initiate route is on rest.fal.ai (and rest.alpha.fal.ai).
 */
export async function initiateUpload(
  uploads: UploadStore,
  stats: EmulatorStats,
  req: IncomingMessage,
  res: ServerResponse,
  base: string,
): Promise<void> {
  const body = (await readJson(req, res)) as { content_type?: unknown; file_name?: unknown };
  if (body === undefined) return;
  const contentType =
    typeof body.content_type === "string" ? body.content_type : "application/octet-stream";
  const fileName =
    typeof body.file_name === "string" && body.file_name.trim()
      ? body.file_name.replace(/[^\w.-]+/g, "_")
      : "upload.bin";
  const upload = uploads.initiate(contentType, fileName);
  stats.uploads.initiated++;
  json(res, 200, {
    upload_url: emulatorHostUrl(base, `https://${FAL_CDN_HOST}/upload/${upload.id}`),
    file_url: emulatorHostUrl(
      base,
      `https://${FAL_CDN_HOST}/files/emulator/${upload.id}/${encodeURIComponent(fileName)}`,
    ),
  });
}

/** The CDN host: `PUT /upload/{id}` (the bytes) and `GET|HEAD /files/emulator/{id}/{name}`. */
export async function cdnRoute(
  uploads: UploadStore,
  stats: EmulatorStats,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  method: string,
): Promise<void> {
  const put = /^\/upload\/([0-9a-f]{32})$/.exec(path);
  if (put) {
    const upload = uploads.get(put[1]!);
    if (method !== "PUT") return json(res, 405, { detail: "Method not allowed" });
    if (!upload || upload.done) return json(res, 404, { detail: "Unknown or finished upload" });
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > MAX_UPLOAD_BYTES)
      return json(res, 413, { detail: `Larger than ${MAX_UPLOAD_BYTES} bytes` });
    await mkdir(join(upload.path, ".."), { recursive: true });
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_UPLOAD_BYTES) req.destroy(new Error("upload too large"));
    });
    await pipeline(req, createWriteStream(upload.path));
    upload.done = true;
    stats.uploads.completed++;
    stats.uploads.bytes += size;
    res.writeHead(200, { "content-length": 0 });
    return void res.end();
  }
  const file = /^\/files\/emulator\/([0-9a-f]{32})\/[^/]+$/.exec(path);
  const upload = file ? uploads.get(file[1]!) : undefined;
  if (!upload?.done || (method !== "GET" && method !== "HEAD"))
    return json(res, 404, { detail: "File not found" });
  const { size } = await stat(upload.path);
  res.writeHead(200, { "content-type": upload.contentType, "content-length": size });
  if (method === "HEAD") return void res.end();
  createReadStream(upload.path).pipe(res);
}
