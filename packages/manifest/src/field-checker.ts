import { closest, distance } from "fastest-levenshtein";
import { DURATIONS, type HailuoDuration } from "@hailuo/endpoints";
import type { FieldProblem } from "@hailuo/shared";
import type { CardSpec, SourceRef, ThumbnailSpec, TransitionSpec } from "./manifest-types.js";
import { TRANSITIONS } from "./manifest-limits.js";

const CARD_KEYS = ["text", "duration", "color"];
const THUMB_KEYS = ["poster_at", "sheet_columns", "preview"];

/** A path into a parsed document, e.g. `["scenes", 3, "prompt"]`. */
export type Path = (string | number)[];
/** Finds a value in the source; with `key`, the key that names it (for unknown keys). */
export type Locate = (path: Path, key?: boolean) => { line?: number; column?: number };

/** A value cut short for an error message. */
export function quote(value: unknown): string {
  const s = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
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
    const field = path.reduce<string>(
      (acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p),
      "",
    );
    this.problems.push({ file: this.file, field, message, ...this.locate(path, atKey) });
  }

  ref(path: Path): SourceRef {
    return { file: this.file, ...this.locate(path) };
  }

  keys(obj: Record<string, unknown>, path: Path, allowed: string[]): void {
    for (const key of Object.keys(obj)) {
      if (allowed.includes(key)) continue;
      const guess = closest(key, allowed);
      const hint =
        distance(key, guess) <= Math.max(2, Math.floor(key.length / 3))
          ? `; did you mean "${guess}"?`
          : ` (expected one of: ${allowed.join(", ")})`;
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

  number(
    value: unknown,
    path: Path,
    fallback: number,
    { min = 0, max = Infinity, integer = false } = {},
  ): number {
    if (value === undefined || value === null || value === "") return fallback;
    const n = typeof value === "number" ? value : Number(String(value).trim());
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      this.add(
        path,
        `expected ${integer ? "a whole number" : "a number"} from ${min} to ${max}, got ${quote(value)}`,
      );
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
      this.add(
        path,
        `transition must be "name:seconds" with a name from ${TRANSITIONS.slice(0, 6).join(", ")}, …${guess ? `; did you mean "${guess}"?` : ""} (got ${quote(value)})`,
      );
      return undefined;
    }
    const durationS = this.number(dur, path, 0.5, { min: 0, max: 5 });
    return { type, durationS: type === "cut" ? 0 : durationS };
  }

  /** A `thumbnails:` section (poster_at, sheet_columns, preview) with its defaults. */
  thumbnails(value: unknown, path: Path): ThumbnailSpec {
    const t = this.object(value, path) ?? {};
    this.keys(t, path, THUMB_KEYS);
    const posterAt =
      t.poster_at === undefined || t.poster_at === "auto"
        ? "auto"
        : this.number(t.poster_at, [...path, "poster_at"], 0, { min: 0, max: 10 });
    const preview =
      t.preview === undefined ? "gif" : t.preview === false ? "none" : String(t.preview);
    if (!["gif", "webp", "none"].includes(preview))
      this.add([...path, "preview"], `preview must be gif, webp or none, got ${quote(t.preview)}`);
    return {
      posterAt,
      sheetColumns: this.number(t.sheet_columns, [...path, "sheet_columns"], 4, {
        min: 0,
        max: 12,
        integer: true,
      }),
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
    if (!/^(#[0-9a-fA-F]{6}|[a-zA-Z]+)$/.test(color))
      this.add([...path, "color"], `expected #rrggbb or a colour name, got ${quote(color)}`);
    return {
      text: text ?? "",
      durationS: this.number(o.duration, [...path, "duration"], 3, { min: 0.5, max: 30 }),
      color,
    };
  }
}
