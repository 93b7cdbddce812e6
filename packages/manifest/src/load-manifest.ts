import { access, readFile, stat } from "node:fs/promises";
import { isUtf8 } from "node:buffer";
import { dirname, resolve } from "node:path";
import { ManifestError } from "./manifest-error.js";
import { manifestLimits, type ParseOptions } from "./manifest-limits.js";
import { parseManifest } from "./parse-manifest.js";
import type { Manifest } from "./manifest-types.js";

/** Reads a manifest file (size-checked before reading) and parses it. */
export async function loadManifest(file: string, options: Omit<ParseOptions, "file"> = {}): Promise<Manifest> {
  const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new ManifestError(file, [{ file, field: "", message: error.code === "ENOENT" ? "no such file" : error.message }]);
  });
  if (!info.isFile()) throw new ManifestError(file, [{ file, field: "", message: "not a file" }]);
  const { maxBytes } = manifestLimits(options.limits);
  if (info.size > maxBytes) throw new ManifestError(file, [{ file, field: "", message: `file is ${info.size} bytes; manifests are limited to ${maxBytes} bytes (raise it with HAILUO_MAX_MANIFEST_BYTES)` }]);
  const bytes = await readFile(file);
  // A picture, a song or a video is not a manifest: one clear line instead of dozens of YAML errors.
  if (bytes.subarray(0, 4096).includes(0) || !isUtf8(bytes)) {
    throw new ManifestError(file, [{ file, field: "", message: "not a manifest: this is binary data, not YAML, CSV or JSONL text" }]);
  }
  const manifest = parseManifest(bytes.toString("utf8"), { ...options, file });
  // The audio bed is the one file a manifest names: check it now, not after every clip is paid.
  const audio = manifest.assemble?.audio;
  if (audio?.file) {
    const path = resolve(dirname(file), audio.file);
    await access(path).catch(() => {
      throw new ManifestError(file, [{ file, line: audio.source?.line, column: audio.source?.column, field: "assemble.audio.file", message: `audio file ${path} not found (paths are relative to the manifest's folder)` }]);
    });
  }
  return manifest;
}
