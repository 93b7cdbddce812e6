import { basename, extname } from "node:path";
import { parse as parseCsv, CsvError } from "csv-parse/sync";
import { closest, distance } from "fastest-levenshtein";
import { ManifestError } from "./manifest-error.js";
import type { Manifest } from "./manifest-types.js";
import { FieldChecker, type Locate, type Path } from "./field-checker.js";
import type { ParseOptions } from "./manifest-limits.js";
import { SCENE_KEYS, validate } from "./validate-manifest.js";

/** A CSV manifest: a header row with a prompt column; other columns are per-row variables. */
export function parseCsvManifest(text: string, options: ParseOptions, file: string): Manifest {
  let records: { record: Record<string, string>; info: { lines: number } }[];
  try {
    records = parseCsv(text, { columns: (h: string[]) => h.map((x) => x.trim()), bom: true, info: true, skip_empty_lines: true, trim: true }) as never;
  } catch (error) {
    const line = error instanceof CsvError ? (error as CsvError & { lines?: number }).lines : undefined;
    throw new ManifestError(file, [{ file, field: "", message: `not valid CSV: ${(error as Error).message}`, line }]);
  }
  const header = text.replace(/^\uFEFF/, "").split(/\r?\n/, 1)[0]!.split(",").map((h) => h.trim().replace(/^"|"$/g, ""));
  const dupes = header.filter((h, i) => h && header.indexOf(h) !== i);
  if (dupes.length) {
    throw new ManifestError(file, [...new Set(dupes)].map((d) => ({ file, line: 1, column: header.lastIndexOf(d) + 1, field: d, message: `column "${d}" appears twice in the header row (columns ${header.indexOf(d) + 1} and ${header.lastIndexOf(d) + 1}); only one can hold the value` })));
  }
  if (!header.includes("prompt")) {
    const guess = header.length ? closest("prompt", header) : "";
    throw new ManifestError(file, [{ file, line: 1, field: "", message: `the header row needs a "prompt" column${guess && distance("prompt", guess) <= 2 ? `; did you mean "${guess}"?` : ` (found: ${header.join(", ")})`}` }]);
  }
  const lines = records.map((r) => r.info.lines);
  const locate: Locate = (path) => {
    if (path[0] !== "scenes" || typeof path[1] !== "number") return { line: 1 };
    const col = typeof path[2] === "string" ? header.indexOf(path[2]) : -1;
    return { line: lines[path[1]], ...(col >= 0 ? { column: col + 1 } : {}) };
  };
  const c = new FieldChecker(file, locate);
  // Columns that are not scene fields are per-row template variables.
  const raw = records.map(({ record }, i) => {
    const scene: Record<string, unknown> = {};
    const rowVars: Record<string, string> = {};
    for (const [k, v] of Object.entries(record)) {
      if (SCENE_KEYS.includes(k)) scene[k] = v;
      else rowVars[k] = v;
    }
    return { raw: scene, path: ["scenes", i] as Path, rowVars };
  });
  return validate({ name: basename(file, extname(file)) }, raw, c, "csv", options);
}
