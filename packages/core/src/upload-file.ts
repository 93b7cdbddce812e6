import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { basename, extname } from "node:path";
import { InputValidationError } from "@hailuo/shared";
import type { HailuoClient, UploadedFile } from "./client-types.js";

/** Options of `uploadFile`. */
export interface UploadFileOptions {
  /** @default read from the bytes (PNG, JPEG, WebP), else the file's extension, else octet-stream */
  contentType?: string;
  /** The name fal stores it under. @default the file's name, or `upload.<ext>` */
  fileName?: string;
  signal?: AbortSignal;
}

const BY_EXTENSION: Record<string, string> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".webp": "image/webp",
  ".mp4": "video/mp4",
};

/** The image type the bytes are, by their magic numbers, or undefined. */
export function sniffContentType(bytes: Uint8Array): string | undefined {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 12));
  if (b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])))
    return "image/png";
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "image/jpeg";
  if (b.toString("latin1", 0, 4) === "RIFF" && b.toString("latin1", 8, 12) === "WEBP")
    return "image/webp";
  return undefined;
}

/**
 * Uploads a file (its path) or bytes to fal's storage through `@fal-ai/client`'s
 * `fal.storage.upload`, as fal's docs advise for local files ("fal CDN": upload once, pass the
 * URL as the model's input). Returns the URL with the content's size and SHA-256, so a caller
 * can journal it and never upload the same bytes twice. Uploads cost nothing; a failed upload
 * is a typed, retryable error (fal-js retries its initiate call, not the PUT of the bytes).
 */
export async function uploadFile(
  client: Pick<HailuoClient, "upload">,
  source: Uint8Array | string,
  options: UploadFileOptions = {},
): Promise<UploadedFile> {
  let bytes: Uint8Array;
  if (typeof source === "string") {
    try {
      bytes = await readFile(source);
    } catch (error) {
      throw new InputValidationError([
        {
          field: "file",
          message: `cannot read ${source}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        },
      ]);
    }
  } else bytes = source;
  const path = typeof source === "string" ? source : undefined;
  const contentType =
    options.contentType ??
    sniffContentType(bytes) ??
    (path ? BY_EXTENSION[extname(path).toLowerCase()] : undefined) ??
    "application/octet-stream";
  const fileName =
    options.fileName ??
    (path ? basename(path) : `upload.${contentType.split("/")[1]?.split(/[;+-]/)[0] ?? "bin"}`);
  const file = new File([bytes], fileName, { type: contentType });
  const url = await client.upload(file, { signal: options.signal });
  return {
    url,
    bytes: bytes.byteLength,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    contentType,
  };
}
