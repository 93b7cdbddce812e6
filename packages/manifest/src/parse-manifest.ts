import { extname } from "node:path";
import { parseCsvManifest } from "./csv-source.js";
import { parseJsonl } from "./jsonl-source.js";
import { ManifestError } from "./manifest-error.js";
import { manifestLimits, type ParseOptions } from "./manifest-limits.js";
import type { Manifest } from "./manifest-types.js";
import { parseYaml } from "./yaml-source.js";

/** Which format a file name suggests. */
export function formatFromFile(file: string): "yaml" | "csv" | "jsonl" {
  const ext = extname(file).toLowerCase();
  if (ext === ".csv") return "csv";
  if (ext === ".jsonl" || ext === ".ndjson") return "jsonl";
  return "yaml";
}

/**
 * Parses and validates manifest text (pure: no file or network access). Throws a ManifestError
 * listing every problem at once, each with file, line, column and field.
 */
export function parseManifest(text: string, options: ParseOptions = {}): Manifest {
  const file = options.file ?? "<inline>";
  const { maxBytes } = manifestLimits(options.limits);
  if (Buffer.byteLength(text) > maxBytes) {
    throw new ManifestError(file, [
      {
        file,
        field: "",
        message: `manifest is larger than ${Math.round(maxBytes / 1024)} KiB (raise it with HAILUO_MAX_MANIFEST_BYTES)`,
      },
    ]);
  }
  const format = options.format ?? formatFromFile(file);
  if (format === "csv") return parseCsvManifest(text, options, file);
  if (format === "jsonl") return parseJsonl(text, options, file);
  return parseYaml(text, options, file);
}
