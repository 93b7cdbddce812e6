import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import { basename, extname } from "node:path";
import type { Manifest } from "./manifest-types.js";
import { FieldChecker } from "./field-checker.js";
import type { ParseOptions } from "./manifest-limits.js";
import { validate, type RawScene } from "./validate-manifest.js";
import { yaml } from "./parsers.js";

/** Keys written in a line of valid JSON: a quoted string followed by a colon is always a key. */
function countKeys(line: string): number {
  return line.match(/"(?:[^"\\]|\\.)*"\s*:/g)?.length ?? 0;
}

/** Keys a parsed JSON value holds, at every depth. */
function keysIn(value: unknown): number {
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + keysIn(v), 0);
  if (value && typeof value === "object")
    return Object.values(value).reduce((n: number, v) => n + 1 + keysIn(v), 0);
  return 0;
}

/** JSONL scenes line by line: each line becomes a scene (or a problem) as it is read. */
class JsonlLines {
  readonly raw: RawScene[] = [];
  readonly lines: number[] = [];
  readonly c: FieldChecker;

  constructor(private readonly file: string) {
    this.c = new FieldChecker(file, (path) =>
      typeof path[1] === "number" ? { line: this.lines[path[1]] } : {},
    );
  }

  add(line: string, lineNo: number): void {
    const { c, file } = this;
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      c.problems.push({
        file,
        line: lineNo,
        field: "",
        message: `not valid JSON: ${(error as Error).message}`,
      });
      return;
    }
    // JSON.parse keeps the last of two equal keys silently; YAML's parser (a JSON superset) reports
    // them. It runs only when the line names more keys than the parsed value holds (20× faster).
    const dupe =
      countKeys(line) !== keysIn(value)
        ? yaml()
            .parseDocument(line, { uniqueKeys: true })
            .errors.find((e) => e.code === "DUPLICATE_KEY")
        : undefined;
    if (dupe) {
      c.problems.push({
        file,
        line: lineNo,
        column: (dupe.linePos?.[0]?.col ?? 0) || undefined,
        field: "",
        message: `the same key appears twice in this object (${dupe.message.split("\n")[0]}); only one can hold the value`,
      });
      return;
    }
    this.lines.push(lineNo);
    const o = c.object(value, ["scenes", this.lines.length - 1]);
    if (o) this.raw.push({ raw: o, path: ["scenes", this.lines.length - 1], rowVars: {} });
  }

  manifest(options: ParseOptions): Manifest {
    return validate(
      { name: basename(this.file, extname(this.file)) },
      this.raw,
      this.c,
      "jsonl",
      options,
    );
  }
}

/** A JSONL manifest: one scene object per line. */
export function parseJsonl(text: string, options: ParseOptions, file: string): Manifest {
  const scenes = new JsonlLines(file);
  text.split(/\r?\n/).forEach((line, i) => scenes.add(line, i + 1));
  return scenes.manifest(options);
}

/** The same, read as a stream of text (a file), line by line. */
export async function readJsonlManifest(
  text: AsyncIterable<string>,
  options: ParseOptions,
  file: string,
): Promise<Manifest> {
  const scenes = new JsonlLines(file);
  let lineNo = 0;
  for await (const line of createInterface({ input: Readable.from(text), crlfDelay: Infinity }))
    scenes.add(line, ++lineNo);
  return scenes.manifest(options);
}
