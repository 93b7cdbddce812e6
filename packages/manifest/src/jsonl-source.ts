import { basename, extname } from "node:path";
import { parseDocument } from "yaml";
import type { Manifest } from "./manifest-types.js";
import { FieldChecker } from "./field-checker.js";
import type { ParseOptions } from "./manifest-limits.js";
import { validate, type RawScene } from "./validate-manifest.js";

/** A JSONL manifest: one scene object per line. */
export function parseJsonl(text: string, options: ParseOptions, file: string): Manifest {
  const raw: RawScene[] = [];
  const lines: number[] = [];
  const c = new FieldChecker(file, (path) => (typeof path[1] === "number" ? { line: lines[path[1]] } : {}));
  text.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      c.problems.push({ file, line: i + 1, field: "", message: `not valid JSON: ${(error as Error).message}` });
      return;
    }
    // JSON.parse keeps the last of two equal keys silently; YAML's parser (a JSON superset) reports them.
    const dupe = parseDocument(line, { uniqueKeys: true }).errors.find((e) => e.code === "DUPLICATE_KEY");
    if (dupe) {
      c.problems.push({ file, line: i + 1, column: (dupe.linePos?.[0]?.col ?? 0) || undefined, field: "", message: `the same key appears twice in this object (${dupe.message.split("\n")[0]}); only one can hold the value` });
      return;
    }
    lines.push(i + 1);
    const o = c.object(value, ["scenes", lines.length - 1]);
    if (o) raw.push({ raw: o, path: ["scenes", lines.length - 1], rowVars: {} });
  });
  return validate({ name: basename(file, extname(file)) }, raw, c, "jsonl", options);
}
