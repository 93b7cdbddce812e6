import { Readable, pipeline } from "node:stream";
import { basename, extname } from "node:path";
import type { Options as CsvOptions } from "csv-parse";
import { closest, distance } from "fastest-levenshtein";
import { ManifestError } from "./manifest-error.js";
import type { Manifest } from "./manifest-types.js";
import { FieldChecker, type Locate, type Path } from "./field-checker.js";
import type { ParseOptions } from "./manifest-limits.js";
import { SCENE_KEYS, validate, type RawScene } from "./validate-manifest.js";
import { ENDPOINT_SCENE_KEYS } from "./scene-endpoint.js";
import { TEMPLATE_VAR } from "./template.js";
import type { FieldProblem } from "@hailuo/shared";
import { csvErrorLine, csvStream, csvSync } from "./parsers.js";

type Row = { record: Record<string, string>; info: { lines: number } };

/**
 * What a CSV manifest is made of, row by row: scene fields, per-row variables (every other
 * column) and each row's line. Rows are turned into scenes as they come, so the text itself is
 * never held whole when it is read from a file.
 */
class CsvRows {
  header: string[] = [];
  readonly raw: RawScene[] = [];
  readonly lines: number[] = [];
  constructor(private readonly file: string) {}

  /** csv-parse options: the header row is checked the moment it is read. */
  parserOptions(): CsvOptions {
    return {
      columns: (h: string[]) => {
        this.header = h.map((x) => x.trim());
        this.checkHeader();
        return this.header;
      },
      bom: true,
      info: true,
      skip_empty_lines: true,
      trim: true,
    };
  }

  add({ record, info }: Row): void {
    const scene: Record<string, unknown> = {};
    const rowVars: Record<string, string> = {};
    for (const [k, v] of Object.entries(record)) {
      if (SCENE_KEYS.includes(k)) scene[k] = v;
      else rowVars[k] = v;
    }
    this.lines.push(info.lines);
    this.raw.push({ raw: scene, path: ["scenes", this.raw.length] as Path, rowVars });
  }

  manifest(options: ParseOptions): Manifest {
    const { header, lines } = this;
    const locate: Locate = (path) => {
      if (path[0] !== "scenes" || typeof path[1] !== "number") return { line: 1 };
      const col = typeof path[2] === "string" ? header.indexOf(path[2]) : -1;
      return { line: lines[path[1]], ...(col >= 0 ? { column: col + 1 } : {}) };
    };
    return validate(
      { name: basename(this.file, extname(this.file)) },
      this.raw,
      new FieldChecker(this.file, locate),
      "csv",
      options,
      this.keepOldVariables(),
    );
  }

  /**
   * Before `model`, `image` and the other fields of the family were scene fields, a column of
   * that name was a per-row variable. One that a prompt still uses as `{{model}}` stays one
   * (the CSV means what it always meant), with a warning; otherwise it is the scene field.
   */
  private keepOldVariables(): FieldProblem[] {
    const used = new Set<string>();
    for (const { raw } of this.raw)
      if (typeof raw.prompt === "string")
        for (const m of raw.prompt.matchAll(TEMPLATE_VAR)) used.add(m[1]!);
    const notes: FieldProblem[] = [];
    for (const key of ENDPOINT_SCENE_KEYS) {
      if (!used.has(key) || !this.header.includes(key)) continue;
      for (const scene of this.raw) {
        if (key in scene.raw) scene.rowVars[key] = String(scene.raw[key]);
        delete scene.raw[key];
      }
      notes.push({
        file: this.file,
        line: 1,
        column: this.header.indexOf(key) + 1,
        field: key,
        message: `column "${key}" is used as {{${key}}} in prompts, so it stays a variable and is not the scene's ${key}; rename the column to use the scene field`,
      });
    }
    return notes;
  }

  /** A parse error of csv-parse as a ManifestError with its line. */
  failed(error: unknown): never {
    if (error instanceof ManifestError) throw error;
    const cause = (error as { cause?: unknown }).cause;
    if (cause instanceof ManifestError) throw cause;
    const line = csvErrorLine(error);
    throw new ManifestError(this.file, [
      { file: this.file, field: "", message: `not valid CSV: ${(error as Error).message}`, line },
    ]);
  }

  private checkHeader(): void {
    const { header, file } = this;
    const dupes = header.filter((h, i) => h && header.indexOf(h) !== i);
    if (dupes.length) {
      throw new ManifestError(
        file,
        [...new Set(dupes)].map((d) => ({
          file,
          line: 1,
          column: header.lastIndexOf(d) + 1,
          field: d,
          message: `column "${d}" appears twice in the header row (columns ${header.indexOf(d) + 1} and ${header.lastIndexOf(d) + 1}); only one can hold the value`,
        })),
      );
    }
    if (!header.includes("prompt")) {
      const guess = header.length ? closest("prompt", header) : "";
      throw new ManifestError(file, [
        {
          file,
          line: 1,
          field: "",
          message: `the header row needs a "prompt" column${guess && distance("prompt", guess) <= 2 ? `; did you mean "${guess}"?` : ` (found: ${header.join(", ")})`}`,
        },
      ]);
    }
  }
}

/** A CSV manifest: a header row with a prompt column; other columns are per-row variables. */
export function parseCsvManifest(text: string, options: ParseOptions, file: string): Manifest {
  const rows = new CsvRows(file);
  try {
    for (const row of csvSync().parse(text, rows.parserOptions()) as unknown as Row[])
      rows.add(row);
  } catch (error) {
    rows.failed(error);
  }
  return rows.manifest(options);
}

/** The same, read as a stream of text (a file): rows become scenes as they are parsed. */
export async function readCsvManifest(
  text: AsyncIterable<string>,
  options: ParseOptions,
  file: string,
): Promise<Manifest> {
  const rows = new CsvRows(file);
  try {
    const parser = (await csvStream()).parse(rows.parserOptions());
    // pipeline, not pipe: an error of the source (bytes that are not text) reaches the parser's reader.
    pipeline(Readable.from(text), parser, () => {});
    for await (const row of parser) rows.add(row as Row);
  } catch (error) {
    rows.failed(error);
  }
  return rows.manifest(options);
}
