import { InputValidationError, type FieldProblem } from "@hailuo/shared";
import {
  ENDPOINTS,
  FAMILY_RULES,
  endpointOf,
  type ClipDuration,
  type ClipResolution,
  type Condition,
  type CrossFieldRule,
  type EndpointKind,
  type EndpointRecord,
  type FieldSpec,
  type ImageRules,
} from "./endpoints.js";

/**
 * The body sent to any endpoint of the family, once normalised: only the fields its record
 * lists, defaults filled in, enums in fal's spelling.
 */
export interface EndpointInput {
  prompt: string;
  prompt_optimizer: boolean;
  duration?: ClipDuration;
  resolution?: ClipResolution;
  /** The first frame: an http(s) URL (fal's storage, after `uploadFile`) or a data: URI. */
  image_url?: string;
  /** The last frame (Hailuo 02 image-to-video only). */
  end_image_url?: string;
}

/** What an endpoint renders for an input: its duration and resolution, asked for or fixed. */
export interface EffectiveParams {
  kind: EndpointKind;
  duration: ClipDuration;
  resolution: ClipResolution;
  /** Every field of the body, as strings (images by URL). */
  values: Record<string, string>;
}

// Zero-width and other format characters, and every kind of space: a prompt of only these is empty.
const INVISIBLE = /[\p{Cf}\p{Z}\s]/gu;
// Control characters other than tab and newlines never belong in a prompt (a NUL ends strings downstream).
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;
const IMAGE_URL = /^(https?:\/\/\S+|data:image\/(jpeg|png|webp);base64,[A-Za-z0-9+/=\s]+)$/i;

/** What is wrong with a prompt, or undefined when it is fine. */
export function promptProblem(prompt: unknown, maxChars: number): string | undefined {
  if (typeof prompt !== "string") return "is required and must be a string";
  if (prompt.trim() === "") return "must not be empty";
  if (prompt.replace(INVISIBLE, "") === "")
    return "must not be empty (it holds only invisible characters)";
  if (CONTROL.test(prompt)) {
    const at = prompt.search(CONTROL);
    const code = prompt.charCodeAt(at).toString(16).toUpperCase().padStart(4, "0");
    return `holds a control character (U+${code} at character ${at + 1}); remove it`;
  }
  const chars = [...prompt].length;
  if (chars > maxChars) return `is ${chars} characters; at most ${maxChars} are allowed`;
  return undefined;
}

/** An enum value read leniently (`6` for "6", ` 768p` for "768P"), or undefined if none matches. */
function enumValue(spec: { values: readonly string[] }, value: unknown): string | undefined {
  if (typeof value !== "string" && typeof value !== "number") return undefined;
  const text = String(value).trim();
  return (
    spec.values.find((v) => v === text) ??
    spec.values.find((v) => v.toLowerCase() === text.toLowerCase())
  );
}

function quoted(values: readonly string[]): string {
  const q = values.map((v) => JSON.stringify(v));
  return q.length < 3 ? q.join(" or ") : `${q.slice(0, -1).join(", ")} or ${q.at(-1)}`;
}

function cut(value: unknown, max = 60): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function fieldProblem(name: string, spec: FieldSpec, value: unknown): string | undefined {
  switch (spec.type) {
    case "prompt":
      return promptProblem(value, spec.maxChars);
    case "boolean":
      return value === undefined || typeof value === "boolean"
        ? undefined
        : `must be true or false, got ${JSON.stringify(value)}`;
    case "enum":
      return value === undefined || enumValue(spec, value) !== undefined
        ? undefined
        : `must be ${quoted(spec.values)}${spec.unit ? ` (${spec.unit})` : ""}, got ${JSON.stringify(value)}`;
    case "image":
      if (value === undefined)
        return spec.required ? `is required (the image the clip starts from)` : undefined;
      return typeof value === "string" && IMAGE_URL.test(value.trim())
        ? undefined
        : `must be an http(s) URL or a data:image URI of the ${spec.role}, got ${cut(value)} (${name})`;
  }
}

function holds(c: Condition, p: EffectiveParams): boolean {
  if ("kind" in c) return p.kind === c.kind;
  const v =
    p.values[c.field] ??
    (c.field === "duration" ? p.duration : undefined) ??
    (c.field === "resolution" ? p.resolution : undefined);
  if ("present" in c) return (v !== undefined) === c.present;
  return v !== undefined && c.in.includes(v);
}

/** The rules an input breaks, from the record's own and the family's. */
export function brokenRules(record: EndpointRecord, params: EffectiveParams): CrossFieldRule[] {
  return [...record.rules, ...FAMILY_RULES].filter(
    (r) => holds(r.when, params) && !holds(r.require, params),
  );
}

/** The duration and resolution an endpoint renders for a normalised body. */
export function effectiveParams(
  record: EndpointRecord,
  body: Partial<Record<string, unknown>>,
): EffectiveParams {
  const values: Record<string, string> = {};
  for (const name of Object.keys(record.fields)) {
    const v = body[name];
    if (v !== undefined) values[name] = String(v);
  }
  const pick = (name: "duration" | "resolution") => {
    const spec = record.fields[name];
    return values[name] ?? record.fixed[name] ?? (spec?.type === "enum" ? spec.default : undefined);
  };
  return {
    kind: record.kind,
    duration: (pick("duration") ?? "6") as ClipDuration,
    resolution: (pick("resolution") ?? "768P") as ClipResolution,
    values,
  };
}

/** The endpoints of the family that take a field, for "did you mean" hints. */
function takenBy(field: string): string[] {
  return ENDPOINTS.filter((e) => field in e.fields).map((e) => e.id);
}

/** Options of `checkInput`. */
export interface CheckOptions {
  /**
   * `accept`: a field the endpoint renders fixed (duration on a 1080P endpoint) may be given
   * with that very value and is left out of the body; `refuse`: it is an unknown field, as the
   * seed's `checkHailuoInput` has always said. @default "accept"
   */
  fixedFields?: "accept" | "refuse";
}

/**
 * Every problem with an input for an endpoint, by field; empty when it is valid. Pure: reads
 * the endpoint's record only. Throws `UnknownEndpointError` for an id no record describes.
 */
export function checkInput(
  endpointId: string,
  input: unknown,
  options: CheckOptions = {},
): FieldProblem[] {
  return checkRecordInput(endpointOf(endpointId), input, options);
}

/** `checkInput` against a record in hand. */
export function checkRecordInput(
  record: EndpointRecord,
  input: unknown,
  options: CheckOptions = {},
): FieldProblem[] {
  if (typeof input !== "object" || input === null || Array.isArray(input))
    return [{ field: "", message: "expected an object with a prompt" }];
  const rec = input as Record<string, unknown>;
  const fields = Object.keys(record.fields);
  const problems: FieldProblem[] = [];
  const fixedGiven: [string, unknown][] = [];
  for (const key of Object.keys(rec)) {
    if (key in record.fields) continue;
    const fixed = record.fixed[key as "duration" | "resolution"];
    if (fixed !== undefined && (options.fixedFields ?? "accept") === "accept") {
      fixedGiven.push([key, rec[key]]);
      continue;
    }
    const others = takenBy(key).filter((id) => id !== record.id);
    problems.push({
      field: key,
      message:
        `unknown field (expected one of ${fields.join(", ")})` +
        (others.length ? `; ${key} is taken by ${others.join(", ")}` : ""),
    });
  }
  const bad = new Set<string>();
  for (const [name, spec] of Object.entries(record.fields)) {
    const message = fieldProblem(name, spec, rec[name]);
    if (message) {
      problems.push({ field: name, message });
      bad.add(name);
    }
  }
  const body = Object.fromEntries(
    Object.entries(record.fields).map(([name, spec]) => [
      name,
      spec.type === "enum" ? enumValue(spec, rec[name]) : rec[name],
    ]),
  );
  for (const [key, value] of fixedGiven) {
    const fixed = record.fixed[key as "duration" | "resolution"]!;
    const given = String(value).trim();
    if (given.toUpperCase() === fixed.toUpperCase()) continue;
    // Which family rule explains it (10 s at 1080P), judged as if the endpoint took the value.
    const asked = effectiveParams(record, body);
    const why = brokenRules(record, { ...asked, values: { ...asked.values, [key]: given } }).find(
      (r) => r.field === key,
    );
    const label = key === "duration" ? `${fixed} s` : fixed;
    problems.push({
      field: key,
      message: `this endpoint renders ${label} only and takes no ${key}, got ${JSON.stringify(value)}${why ? ` (${why.message})` : ""}`,
    });
    bad.add(key);
  }
  const params = effectiveParams(record, body);
  for (const rule of brokenRules(record, params)) {
    const involved = [rule.field, "field" in rule.when ? rule.when.field : ""];
    if (involved.some((f) => bad.has(f))) continue;
    problems.push({ field: rule.field, message: rule.message });
  }
  return problems;
}

/**
 * Validates and normalises an input for an endpoint: only its fields, in its order, numbers and
 * other spellings read as fal's enum values, defaults filled in, fixed fields left out. Throws
 * an InputValidationError listing every problem; nothing invalid reaches the network.
 */
export function normalizeInput(
  endpointId: string,
  input: unknown,
  options: CheckOptions = {},
): EndpointInput {
  const record = endpointOf(endpointId);
  const problems = checkRecordInput(record, input, options);
  if (problems.length > 0) throw new InputValidationError(problems);
  const rec = input as Record<string, unknown>;
  const body: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(record.fields)) {
    const v = rec[name];
    if (spec.type === "enum") body[name] = v === undefined ? spec.default : enumValue(spec, v);
    else if (spec.type === "boolean") body[name] = v ?? spec.default;
    else if (spec.type === "image") {
      if (v !== undefined) body[name] = (v as string).trim();
    } else body[name] = v;
  }
  return body as unknown as EndpointInput;
}

/**
 * What makes the cache key of a normalised input, in the record's order, each image replaced
 * by `contentHash(url, field)` (the same picture under another URL is the same clip). The seed's
 * parts are exactly `[prompt, duration, prompt_optimizer]`, as the runner has always hashed
 * them; every other endpoint's start with its id, so two endpoints never share a key.
 */
export function cacheKeyParts(
  endpointId: string,
  body: EndpointInput,
  contentHash: (url: string, field: string) => string = (url) => url,
): unknown[] {
  const record = endpointOf(endpointId);
  const values = body as unknown as Record<string, unknown>;
  const parts = record.cacheKeyFields.map((name) => {
    const v = values[name];
    if (record.fields[name]?.type === "image")
      return typeof v === "string" ? contentHash(v, name) : null;
    return v ?? null;
  });
  return record === ENDPOINTS[0] ? parts : [record.id, ...parts];
}

/** The image fields of an endpoint (first frame, then last frame), empty for text-to-video. */
export function imageFields(endpointId: string): string[] {
  return Object.entries(endpointOf(endpointId).fields)
    .filter(([, spec]) => spec.type === "image")
    .map(([name]) => name);
}

/** Facts about an image file, read by whoever has the file (the manifest, the runner). */
export interface ImageFacts {
  /** `jpeg`, `png`, `webp`, or what else the file turned out to be. */
  format: string;
  bytes: number;
  width: number;
  height: number;
}

/** What is wrong with an image for MiniMax (format, size, short side, aspect); empty when fine. */
export function checkImageFacts(facts: ImageFacts, rules: ImageRules): string[] {
  const problems: string[] = [];
  if (!(rules.formats as readonly string[]).includes(facts.format))
    problems.push(
      `is ${facts.format}; MiniMax reads ${rules.formats.map((f) => f.toUpperCase()).join(", ")}`,
    );
  if (facts.bytes >= rules.maxBytes)
    problems.push(
      `is ${(facts.bytes / 1048576).toFixed(1)} MB; it must be under ${rules.maxBytes / 1048576} MB`,
    );
  const short = Math.min(facts.width, facts.height);
  if (short < rules.minShortSidePx)
    problems.push(
      `is ${facts.width}×${facts.height}; its short side must be over ${rules.minShortSidePx - 1} px`,
    );
  const aspect = facts.width / facts.height;
  if (facts.height > 0 && (aspect < rules.aspect.min || aspect > rules.aspect.max))
    problems.push(
      `is ${facts.width}×${facts.height} (width ÷ height ${aspect.toFixed(2)}); it must lie between ${rules.aspect.min} and ${rules.aspect.max}`,
    );
  return problems;
}
