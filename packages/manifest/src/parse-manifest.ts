import { basename, extname } from "node:path";
import { parse as parseCsv, CsvError } from "csv-parse/sync";
import { closest, distance } from "fastest-levenshtein";
import { isMap, isNode, isPair, isScalar, LineCounter, parseDocument, type Document, type Node } from "yaml";
import { DURATIONS, MAX_PROMPT_CHARS, checkHailuoInput, type HailuoDuration } from "@hailuo/spec";
import type { FieldProblem } from "@hailuo/shared";
import { ManifestError } from "./manifest-error.js";
import type { AssembleSpec, CardSpec, Manifest, Scene, SourceRef, ThumbnailSpec, TransitionSpec } from "./manifest-types.js";
import { TEMPLATE_VAR, expandVars, renderTemplate, runVariables } from "./template.js";

/** Largest manifest we read: far above any real storyboard, far below a memory problem. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;
/** Most scenes × takes in one manifest. */
export const MAX_ITEMS = 5000;
/** Most takes of one scene. */
export const MAX_TAKES = 20;
/** Transitions ffmpeg's xfade offers (plus `cut` for none). */
export const TRANSITIONS = [
  "cut", "fade", "dissolve", "fadeblack", "fadewhite", "wipeleft", "wiperight", "wipeup", "wipedown",
  "slideleft", "slideright", "slideup", "slidedown", "smoothleft", "smoothright", "smoothup", "smoothdown",
  "circleopen", "circleclose", "circlecrop", "rectcrop", "radial", "pixelize", "distance", "hblur",
] as const;

/** Options of `parseManifest`. */
export interface ParseOptions {
  /** Shown in errors and used for the default name. @default "<inline>" */
  file?: string;
  /** @default from the file extension, else yaml */
  format?: "yaml" | "csv" | "jsonl";
  /** The run's time, for `{{date}}` and friends. @default new Date() */
  now?: Date;
  /** Time zone of `{{date}}` and friends. @default the process's */
  timeZone?: string;
  /** Extra variables (job variables); manifest `vars` override run variables, these override both. */
  vars?: Record<string, string>;
}

/** A path into a parsed document, e.g. `["scenes", 3, "prompt"]`. */
export type Path = (string | number)[];
/** Finds a value in the source; with `key`, the key that names it (for unknown keys). */
export type Locate = (path: Path, key?: boolean) => { line?: number; column?: number };

const TOP_KEYS = ["name", "defaults", "vars", "scenes", "assemble", "thumbnails"];
const DEFAULT_KEYS = ["duration", "prompt_optimizer", "takes"];
const SCENE_KEYS = ["id", "prompt", "duration", "prompt_optimizer", "takes", "tags", "transition"];
const ASSEMBLE_KEYS = ["transition", "title", "end", "audio", "output", "placeholders"];
const CARD_KEYS = ["text", "duration", "color"];
const AUDIO_KEYS = ["file", "volume", "fade_in", "fade_out"];
const THUMB_KEYS = ["poster_at", "sheet_columns", "preview"];
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/;

/** Tells whether an id can be used as a file-name stem inside the run folder. */
export function isSafeId(id: string): boolean {
  return SAFE_ID.test(id) && !id.includes("..");
}

/** Turns a prompt into an id stem: its first words, lower-case, dashes. */
export function slugify(text: string, maxLength = 40): string {
  const slug = text
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/\{\{[^}]*\}\}|\[[^\]]*\]/g, " ")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .split("-")
    .slice(0, 6)
    .join("-")
    .slice(0, maxLength)
    .replace(/-+$/, "");
  return slug || "scene";
}

function quote(value: unknown): string {
  const s = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}...` : s);
}

/**
 * Collects located problems while reading a parsed document field by field; shared by every
 * YAML format of the project (manifests, job definitions).
 */
export class FieldChecker {
  readonly problems: FieldProblem[] = [];
  constructor(
    readonly file: string,
    readonly locate: Locate,
  ) {}

  add(path: Path, message: string, atKey = false): void {
    const field = path.reduce<string>((acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), "");
    this.problems.push({ file: this.file, field, message, ...this.locate(path, atKey) });
  }

  ref(path: Path): SourceRef {
    return { file: this.file, ...this.locate(path) };
  }

  keys(obj: Record<string, unknown>, path: Path, allowed: string[]): void {
    for (const key of Object.keys(obj)) {
      if (allowed.includes(key)) continue;
      const guess = closest(key, allowed);
      const hint = distance(key, guess) <= Math.max(2, Math.floor(key.length / 3)) ? `; did you mean "${guess}"?` : ` (expected one of: ${allowed.join(", ")})`;
      this.add([...path, key], `unknown key${hint}`, true);
    }
  }

  object(value: unknown, path: Path): Record<string, unknown> | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "object" || Array.isArray(value)) {
      this.add(path, `expected a mapping, got ${quote(value)}`);
      return undefined;
    }
    return value as Record<string, unknown>;
  }

  duration(value: unknown, path: Path, fallback: HailuoDuration): HailuoDuration {
    if (value === undefined || value === null || value === "") return fallback;
    const s = String(value).trim().replace(/s$/, "");
    if ((DURATIONS as readonly string[]).includes(s)) return s as HailuoDuration;
    this.add(path, `duration must be 6 or 10 (seconds), got ${quote(value)}`);
    return fallback;
  }

  bool(value: unknown, path: Path, fallback: boolean): boolean {
    if (value === undefined || value === null || value === "") return fallback;
    if (typeof value === "boolean") return value;
    const s = String(value).trim().toLowerCase();
    if (["true", "yes", "1", "on"].includes(s)) return true;
    if (["false", "no", "0", "off"].includes(s)) return false;
    this.add(path, `expected true or false, got ${quote(value)}`);
    return fallback;
  }

  number(value: unknown, path: Path, fallback: number, { min = 0, max = Infinity, integer = false } = {}): number {
    if (value === undefined || value === null || value === "") return fallback;
    const n = typeof value === "number" ? value : Number(String(value).trim());
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      this.add(path, `expected ${integer ? "a whole number" : "a number"} from ${min} to ${max}, got ${quote(value)}`);
      return fallback;
    }
    return n;
  }

  string(value: unknown, path: Path): string | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value === "string") return value;
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    this.add(path, `expected text, got ${quote(value)}`);
    return undefined;
  }

  transition(value: unknown, path: Path): TransitionSpec | undefined {
    if (value === undefined || value === null) return undefined;
    let type: unknown;
    let dur: unknown = 0.5;
    if (typeof value === "string") [type, dur = 0.5] = value.split(":");
    else if (typeof value === "object" && !Array.isArray(value)) {
      const o = value as Record<string, unknown>;
      this.keys(o, path, ["type", "duration"]);
      type = o.type;
      dur = o.duration ?? 0.5;
    }
    if (typeof type !== "string" || !(TRANSITIONS as readonly string[]).includes(type)) {
      const guess = typeof type === "string" ? closest(type, [...TRANSITIONS]) : undefined;
      this.add(path, `transition must be "name:seconds" with a name from ${TRANSITIONS.slice(0, 6).join(", ")}, …${guess ? `; did you mean "${guess}"?` : ""} (got ${quote(value)})`);
      return undefined;
    }
    const durationS = this.number(dur, path, 0.5, { min: 0, max: 5 });
    return { type, durationS: type === "cut" ? 0 : durationS };
  }

  /** A `thumbnails:` section (poster_at, sheet_columns, preview) with its defaults. */
  thumbnails(value: unknown, path: Path): ThumbnailSpec {
    const t = this.object(value, path) ?? {};
    this.keys(t, path, THUMB_KEYS);
    const posterAt = t.poster_at === undefined || t.poster_at === "auto" ? "auto" : this.number(t.poster_at, [...path, "poster_at"], 0, { min: 0, max: 10 });
    const preview = t.preview === undefined ? "gif" : t.preview === false ? "none" : String(t.preview);
    if (!["gif", "webp", "none"].includes(preview)) this.add([...path, "preview"], `preview must be gif, webp or none, got ${quote(t.preview)}`);
    return {
      posterAt,
      sheetColumns: this.number(t.sheet_columns, [...path, "sheet_columns"], 4, { min: 0, max: 12, integer: true }),
      preview: preview as ThumbnailSpec["preview"],
    };
  }

  card(value: unknown, path: Path): CardSpec | undefined {
    if (typeof value === "string") return { text: value, durationS: 3, color: "#101820" };
    const o = this.object(value, path);
    if (!o) return undefined;
    this.keys(o, path, CARD_KEYS);
    const text = this.string(o.text, [...path, "text"]);
    if (!text) this.add([...path, "text"], "a card needs text");
    const color = this.string(o.color, [...path, "color"]) ?? "#101820";
    if (!/^(#[0-9a-fA-F]{6}|[a-zA-Z]+)$/.test(color)) this.add([...path, "color"], `expected #rrggbb or a colour name, got ${quote(color)}`);
    return { text: text ?? "", durationS: this.number(o.duration, [...path, "duration"], 3, { min: 0.5, max: 30 }), color };
  }
}

function splitTags(value: unknown, c: FieldChecker, path: Path): string[] {
  if (value === undefined || value === null || value === "") return [];
  if (Array.isArray(value)) return value.map((t, i) => c.string(t, [...path, i]) ?? "").filter(Boolean);
  if (typeof value === "string") return value.split(/[;,]/).map((t) => t.trim()).filter(Boolean);
  c.add(path, `expected a list of tags, got ${quote(value)}`);
  return [];
}

interface RawScene {
  raw: Record<string, unknown>;
  path: Path;
  /** Per-row variables (CSV columns that are not scene fields). */
  rowVars: Record<string, string>;
}

function validate(
  root: Record<string, unknown>,
  rawScenes: RawScene[] | undefined,
  c: FieldChecker,
  format: Manifest["format"],
  options: ParseOptions,
): Manifest {
  const name = c.string(root.name, ["name"]) ?? basename(c.file, extname(c.file));
  const d = c.object(root.defaults, ["defaults"]) ?? {};
  c.keys(d, ["defaults"], DEFAULT_KEYS);
  const defaults = {
    duration: c.duration(d.duration, ["defaults", "duration"], "6"),
    prompt_optimizer: c.bool(d.prompt_optimizer, ["defaults", "prompt_optimizer"], true),
    takes: c.number(d.takes, ["defaults", "takes"], 1, { min: 1, max: MAX_TAKES, integer: true }),
  };
  const varsIn = c.object(root.vars, ["vars"]) ?? {};
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(varsIn)) {
    const s = c.string(v, ["vars", k]);
    if (s !== undefined) vars[k] = s;
  }
  const runVars = runVariables(options.now, options.timeZone);
  const expanded = expandVars({ ...vars, ...options.vars }, runVars);
  for (const p of expanded.problems) c.add(["vars", p.name], p.message);
  const baseVars = { ...runVars, ...expanded.vars };

  const scenes: Scene[] = [];
  const seen = new Map<string, Path>();
  let items = 0;
  if (!rawScenes || rawScenes.length === 0) c.add(["scenes"], "a manifest needs at least one scene");
  for (const { raw, path, rowVars } of rawScenes ?? []) {
    c.keys(raw, path, SCENE_KEYS);
    const promptRaw = c.string(raw.prompt, [...path, "prompt"]);
    if (promptRaw === undefined) {
      c.add([...path, "prompt"], "every scene needs a prompt");
      continue;
    }
    const { text: prompt, missing } = renderTemplate(promptRaw, { ...baseVars, ...rowVars });
    for (const m of missing) c.add([...path, "prompt"], `undefined variable {{${m}}} (define it under vars:${format === "csv" ? " or as a column" : ""})`);
    // A value that itself holds a placeholder (a CSV cell, say) would reach fal as literal braces.
    const left = missing.length ? undefined : new RegExp(TEMPLATE_VAR.source).exec(prompt);
    if (left) c.add([...path, "prompt"], `${left[0]} is left in the prompt after templating (a variable's value holds a placeholder)`);
    const duration = c.duration(raw.duration, [...path, "duration"], defaults.duration);
    const prompt_optimizer = c.bool(raw.prompt_optimizer, [...path, "prompt_optimizer"], defaults.prompt_optimizer);
    for (const p of checkHailuoInput({ prompt, duration, prompt_optimizer })) {
      if (p.field === "prompt") c.add([...path, "prompt"], p.message.startsWith("is ") ? `prompt ${p.message} (after templating; limit ${MAX_PROMPT_CHARS})` : `prompt ${p.message}`);
    }
    let id = c.string(raw.id, [...path, "id"])?.trim();
    if (id !== undefined && id !== "" && !isSafeId(id)) {
      c.add([...path, "id"], `id ${quote(id)} is not a safe file name: use letters, digits, ".", "_" and "-" (no "/", "\\" or ".."), at most 80 characters`);
      id = undefined;
    } else if (id === "") id = undefined;
    if (id !== undefined && seen.has(id)) {
      c.add([...path, "id"], `duplicate id ${quote(id)} (first used at ${(seen.get(id) ?? []).join(".")})`);
    }
    const derived = id === undefined;
    if (derived) {
      const stem = slugify(promptRaw);
      id = stem;
      for (let n = 2; seen.has(id); n++) id = `${stem}-${n}`;
    }
    seen.set(id!, path);
    const takes = c.number(raw.takes, [...path, "takes"], defaults.takes, { min: 1, max: MAX_TAKES, integer: true });
    items += takes;
    const scene: Scene = {
      id: id!,
      prompt,
      duration,
      prompt_optimizer,
      takes,
      tags: splitTags(raw.tags, c, [...path, "tags"]),
      source: c.ref(path),
    };
    const transition = c.transition(raw.transition, [...path, "transition"]);
    if (transition) scene.transition = transition;
    scenes.push(scene);
  }
  if (items > MAX_ITEMS) c.add(["scenes"], `${items} generations (scenes × takes) is more than the ${MAX_ITEMS} one manifest may hold`);

  let assemble: AssembleSpec | undefined;
  const a = root.assemble === true ? {} : c.object(root.assemble, ["assemble"]);
  if (a) {
    c.keys(a, ["assemble"], ASSEMBLE_KEYS);
    const output = c.string(a.output, ["assemble", "output"]) ?? "film.mp4";
    if (!isSafeId(output) || !/\.mp4$/i.test(output)) c.add(["assemble", "output"], `output must be a plain file name ending in .mp4, got ${quote(output)}`);
    assemble = {
      transition: c.transition(a.transition, ["assemble", "transition"]) ?? { type: "cut", durationS: 0 },
      output,
      placeholders: c.bool(a.placeholders, ["assemble", "placeholders"], false),
    };
    const title = a.title === undefined ? undefined : c.card(a.title, ["assemble", "title"]);
    if (title) assemble.title = title;
    const end = a.end === undefined ? undefined : c.card(a.end, ["assemble", "end"]);
    if (end) assemble.end = end;
    if (a.audio !== undefined && a.audio !== null) {
      const au = typeof a.audio === "string" ? { file: a.audio } : c.object(a.audio, ["assemble", "audio"]);
      if (au) {
        c.keys(au, ["assemble", "audio"], AUDIO_KEYS);
        const file = c.string(au.file, ["assemble", "audio", "file"]);
        if (!file) c.add(["assemble", "audio", "file"], "audio needs a file");
        assemble.audio = {
          file: file ?? "",
          volume: c.number(au.volume, ["assemble", "audio", "volume"], 1, { min: 0, max: 4 }),
          fadeInS: c.number(au.fade_in, ["assemble", "audio", "fade_in"], 1, { min: 0, max: 30 }),
          fadeOutS: c.number(au.fade_out, ["assemble", "audio", "fade_out"], 2, { min: 0, max: 30 }),
          source: c.ref(typeof a.audio === "string" ? ["assemble", "audio"] : ["assemble", "audio", "file"]),
        };
      }
    }
  }

  const thumbnails = c.thumbnails(root.thumbnails, ["thumbnails"]);

  if (c.problems.length > 0) throw new ManifestError(c.file, c.problems);
  const manifest: Manifest = { name, file: c.file, format, defaults, vars, scenes, thumbnails };
  if (assemble) manifest.assemble = assemble;
  return manifest;
}

/**
 * Parses YAML text safely (duplicate keys and syntax errors refused with positions, alias
 * expansion bounded) and returns the data with a function that finds any path's line and column.
 */
export function readYamlSource(text: string, file: string): { data: unknown; locate: Locate } {
  const lineCounter = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true });
  const pos = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const errors = [...doc.errors, ...doc.warnings];
  if (errors.length > 0) {
    throw new ManifestError(file, errors.map((e) => ({ file, field: "", message: e.message.split("\n")[0]!, ...pos(e.pos[0]) })));
  }
  let data: unknown;
  try {
    // Aliases are legal YAML, but a "billion laughs" document expands them exponentially.
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new ManifestError(file, [{ file, field: "", message: `refused: ${(error as Error).message} (YAML alias expansion is limited)` }]);
  }
  const keyPos = (path: Path) => {
    const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
    if (!isMap(parent)) return undefined;
    const pair = parent.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === path[path.length - 1]);
    return pair && isScalar(pair.key) && pair.key.range ? pos(pair.key.range[0]) : undefined;
  };
  const locate: Locate = (path, key) => {
    const k = key && path.length > 0 ? keyPos(path) : undefined;
    if (k) return k;
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true) as unknown;
      if (isNode(node) && (node as Node).range) return pos((node as Node).range![0]);
      // A key with an empty value: point at the key itself.
      const atKey = n > 0 && (node === null || node === undefined) ? keyPos(path.slice(0, n)) : undefined;
      if (atKey) return atKey;
    }
    return {};
  };
  return { data, locate };
}

function parseYaml(text: string, options: ParseOptions, file: string): Manifest {
  const { data, locate } = readYamlSource(text, file);
  return manifestFromData(data, locate, { ...options, file });
}

/**
 * Validates an already-parsed YAML manifest (for example one written inline in a job file);
 * `locate` maps its paths to source positions.
 */
export function manifestFromData(data: unknown, locate: Locate, options: ParseOptions & { file: string }): Manifest {
  const file = options.file;
  const c = new FieldChecker(file, locate);
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    c.add([], "a YAML manifest is a mapping with at least `scenes:`");
    throw new ManifestError(file, c.problems);
  }
  const root = data as Record<string, unknown>;
  c.keys(root, [], TOP_KEYS);
  let raw: RawScene[] | undefined;
  if (root.scenes !== undefined && !Array.isArray(root.scenes)) c.add(["scenes"], "scenes must be a list");
  else
    raw = (root.scenes as unknown[] | undefined)?.flatMap((s, i) => {
      const path = ["scenes", i];
      if (typeof s === "string") return [{ raw: { prompt: s }, path, rowVars: {} }];
      const o = c.object(s, path);
      return o ? [{ raw: o, path, rowVars: {} }] : [];
    });
  return validate(root, raw, c, "yaml", options);
}

function parseCsvManifest(text: string, options: ParseOptions, file: string): Manifest {
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

function parseJsonl(text: string, options: ParseOptions, file: string): Manifest {
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
  if (Buffer.byteLength(text) > MAX_MANIFEST_BYTES) {
    throw new ManifestError(file, [{ file, field: "", message: `manifest is larger than ${MAX_MANIFEST_BYTES / 1024} KiB` }]);
  }
  const format = options.format ?? formatFromFile(file);
  if (format === "csv") return parseCsvManifest(text, options, file);
  if (format === "jsonl") return parseJsonl(text, options, file);
  return parseYaml(text, options, file);
}
