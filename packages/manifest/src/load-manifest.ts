import { readFile, stat } from "node:fs/promises";
import { ManifestError } from "./manifest-error.js";
import { MAX_MANIFEST_BYTES, parseManifest, type ParseOptions } from "./parse-manifest.js";
import type { Manifest } from "./manifest-types.js";

/** Reads a manifest file (size-checked before reading) and parses it. */
export async function loadManifest(file: string, options: Omit<ParseOptions, "file"> = {}): Promise<Manifest> {
  const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new ManifestError(file, [{ file, field: "", message: error.code === "ENOENT" ? "no such file" : error.message }]);
  });
  if (!info.isFile()) throw new ManifestError(file, [{ file, field: "", message: "not a file" }]);
  if (info.size > MAX_MANIFEST_BYTES) throw new ManifestError(file, [{ file, field: "", message: `file is ${info.size} bytes; manifests are limited to ${MAX_MANIFEST_BYTES} bytes` }]);
  return parseManifest(await readFile(file, "utf8"), { ...options, file });
}
