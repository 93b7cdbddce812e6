import { basename, extname } from "node:path";
import { MAX_PROMPT_CHARS, checkHailuoInput } from "@hailuo/endpoints";
import { closest, distance } from "fastest-levenshtein";
import type { FieldProblem } from "@hailuo/shared";
import { ManifestError } from "./manifest-error.js";
import type { AssembleSpec, Manifest, Scene } from "./manifest-types.js";
import { FieldChecker, quote, type Path } from "./field-checker.js";
import { MAX_TAKES, manifestLimits, type ParseOptions } from "./manifest-limits.js";
import { isSafeId, slugify } from "./scene-ids.js";
import {
  ENDPOINT_SCENE_KEYS,
  linkContinuations,
  readModel,
  readResolution,
  readSceneEndpoint,
  type EndpointDefaults,
} from "./scene-endpoint.js";
import { TEMPLATE_VAR, expandVars, renderTemplate, runVariables } from "./template.js";

export const TOP_KEYS = ["name", "defaults", "vars", "scenes", "assemble", "thumbnails"];
const DEFAULT_KEYS = ["duration", "prompt_optimizer", "takes", "model", "resolution"];
export const SCENE_KEYS = [
  "id",
  "prompt",
  "duration",
  "prompt_optimizer",
  "takes",
  "tags",
  "transition",
  "pick",
  ...ENDPOINT_SCENE_KEYS,
];
const ASSEMBLE_KEYS = ["transition", "title", "end", "audio", "output", "placeholders"];
const AUDIO_KEYS = ["file", "volume", "fade_in", "fade_out"];

function splitTags(value: unknown, c: FieldChecker, path: Path): string[] {
  if (value === undefined || value === null || value === "") return [];
  if (Array.isArray(value))
    return value.map((t, i) => c.string(t, [...path, i]) ?? "").filter(Boolean);
  if (typeof value === "string")
    return value
      .split(/[;,]/)
      .map((t) => t.trim())
      .filter(Boolean);
  c.add(path, `expected a list of tags, got ${quote(value)}`);
  return [];
}

/** A scene as read from any format, before validation. */
export interface RawScene {
  raw: Record<string, unknown>;
  path: Path;
  /** Per-row variables (CSV columns that are not scene fields). */
  rowVars: Record<string, string>;
}

/**
 * Validates a manifest read from any format; throws ManifestError with every problem. `notes`
 * are warnings the format's reader found (kept beside those found here).
 */
export function validate(
  root: Record<string, unknown>,
  rawScenes: RawScene[] | undefined,
  c: FieldChecker,
  format: Manifest["format"],
  options: ParseOptions,
  notes: FieldProblem[] = [],
): Manifest {
  const name = c.string(root.name, ["name"]) ?? basename(c.file, extname(c.file));
  const d = c.object(root.defaults, ["defaults"]) ?? {};
  c.keys(d, ["defaults"], DEFAULT_KEYS);
  const defaults: Manifest["defaults"] = {
    duration: c.duration(d.duration, ["defaults", "duration"], "6"),
    prompt_optimizer: c.bool(d.prompt_optimizer, ["defaults", "prompt_optimizer"], true),
    takes: c.number(d.takes, ["defaults", "takes"], 1, { min: 1, max: MAX_TAKES, integer: true }),
  };
  const endpointDefaults: EndpointDefaults = {
    durationGiven: d.duration !== undefined && d.duration !== null && d.duration !== "",
  };
  const model = readModel(d.model, ["defaults", "model"], c);
  if (model) defaults.model = endpointDefaults.model = model;
  else if (d.model !== undefined && d.model !== null && d.model !== "")
    endpointDefaults.badModel = true;
  const resolution = readResolution(d.resolution, ["defaults", "resolution"], c);
  if (resolution) defaults.resolution = endpointDefaults.resolution = resolution;
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
  const scenes = readScenes(
    rawScenes,
    c,
    format,
    defaults,
    endpointDefaults,
    baseVars,
    manifestLimits(options.limits).maxItems,
  );
  const assemble = readAssemble(root.assemble, c);
  const thumbnails = c.thumbnails(root.thumbnails, ["thumbnails"]);

  if (c.problems.length > 0) throw new ManifestError(c.file, c.problems);
  const manifest: Manifest = { name, file: c.file, format, defaults, vars, scenes, thumbnails };
  if (assemble) manifest.assemble = assemble;
  const warnings = [
    ...notes,
    ...unusedVariables(rawScenes ?? [], { ...vars, ...options.vars }, options.vars ?? {}, c),
  ];
  if (warnings.length) manifest.warnings = warnings;
  return manifest;
}

/**
 * A CSV column or a `--var` that no prompt uses is most likely a slip (a misspelt `duraton`
 * column silently became a variable): warn, naming the column, never refuse.
 */
function unusedVariables(
  rawScenes: RawScene[],
  vars: Record<string, string>,
  cliVars: Record<string, string>,
  c: FieldChecker,
): FieldProblem[] {
  const used = new Set<string>();
  const texts = [
    ...rawScenes.map((s) => (typeof s.raw.prompt === "string" ? s.raw.prompt : "")),
    ...Object.values(vars),
  ];
  for (const t of texts) for (const m of t.matchAll(TEMPLATE_VAR)) used.add(m[1]!);
  const warnings: FieldProblem[] = [];
  const columns = new Set(rawScenes.flatMap((s) => Object.keys(s.rowVars)));
  for (const col of columns) {
    if (used.has(col)) continue;
    const guess = closest(col, SCENE_KEYS);
    const hint = distance(col, guess) <= 2 ? `; did you mean the scene field "${guess}"?` : "";
    // Only CSV has per-row variables: point at the column in its header row.
    warnings.push({
      file: c.file,
      field: col,
      message: `column "${col}" is not a scene field and no prompt uses {{${col}}}${hint}`,
      ...c.locate(["scenes", 0, col]),
      line: 1,
    });
  }
  for (const name of Object.keys(cliVars)) {
    if (!used.has(name))
      warnings.push({
        file: c.file,
        field: name,
        message: `variable "${name}" given to this manifest (--var, or a job's vars:) is not used by any prompt ({{${name}}} appears nowhere)`,
      });
  }
  return warnings;
}

/** The scenes: templated prompts checked against the endpoint's rules, safe unique ids, takes and transitions. */
function readScenes(
  rawScenes: RawScene[] | undefined,
  c: FieldChecker,
  format: Manifest["format"],
  defaults: Manifest["defaults"],
  endpointDefaults: EndpointDefaults,
  baseVars: Record<string, string>,
  maxItems: number,
): Scene[] {
  const scenes: Scene[] = [];
  const links: { scene: Scene; path: Path; continueFrom?: string }[] = [];
  const seen = new Map<string, Path>();
  // Next free suffix per derived stem: prompts sharing their first words stay linear, not quadratic.
  const nextSuffix = new Map<string, number>();
  let items = 0;
  if (!rawScenes || rawScenes.length === 0)
    c.add(["scenes"], "a manifest needs at least one scene");
  for (const { raw, path, rowVars } of rawScenes ?? []) {
    c.keys(raw, path, SCENE_KEYS);
    const promptRaw = c.string(raw.prompt, [...path, "prompt"]);
    if (promptRaw === undefined) {
      c.add([...path, "prompt"], "every scene needs a prompt");
      continue;
    }
    const { text: prompt, missing } = renderTemplate(promptRaw, { ...baseVars, ...rowVars });
    for (const m of missing)
      c.add(
        [...path, "prompt"],
        `undefined variable {{${m}}} (define it under vars:${format === "csv" ? " or as a column" : ""})`,
      );
    // A value that itself holds a placeholder (a CSV cell, say) would reach fal as literal braces.
    const left = missing.length ? undefined : new RegExp(TEMPLATE_VAR.source).exec(prompt);
    if (left)
      c.add(
        [...path, "prompt"],
        `${left[0]} is left in the prompt after templating (a variable's value holds a placeholder)`,
      );
    const askedDuration = c.duration(raw.duration, [...path, "duration"], defaults.duration);
    const prompt_optimizer = c.bool(
      raw.prompt_optimizer,
      [...path, "prompt_optimizer"],
      defaults.prompt_optimizer,
    );
    for (const p of checkHailuoInput({ prompt, duration: askedDuration, prompt_optimizer })) {
      if (p.field === "prompt")
        c.add(
          [...path, "prompt"],
          p.message.startsWith("is ")
            ? `prompt ${p.message} (after templating; limit ${MAX_PROMPT_CHARS})`
            : `prompt ${p.message}`,
        );
    }
    let id = c.string(raw.id, [...path, "id"])?.trim();
    if (id !== undefined && id !== "" && !isSafeId(id)) {
      c.add(
        [...path, "id"],
        `id ${quote(id)} is not a safe file name: use letters, digits, ".", "_" and "-" (no "/", "\\" or ".."), at most 80 characters`,
      );
      id = undefined;
    } else if (id === "") id = undefined;
    if (id !== undefined && seen.has(id)) {
      c.add(
        [...path, "id"],
        `duplicate id ${quote(id)} (first used at ${(seen.get(id) ?? []).join(".")})`,
      );
    }
    const derived = id === undefined;
    if (derived) {
      const stem = slugify(promptRaw);
      id = stem;
      let n = nextSuffix.get(stem) ?? 2;
      while (seen.has(id)) id = `${stem}-${n++}`;
      nextSuffix.set(stem, n);
    }
    seen.set(id!, path);
    const takes = c.number(raw.takes, [...path, "takes"], defaults.takes, {
      min: 1,
      max: MAX_TAKES,
      integer: true,
    });
    items += takes;
    const family = readSceneEndpoint(raw, path, c, endpointDefaults, {
      prompt,
      duration: askedDuration,
      durationGiven:
        (raw.duration !== undefined && raw.duration !== null && raw.duration !== "") ||
        endpointDefaults.durationGiven,
      prompt_optimizer,
    });
    const duration = family.duration;
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
    if (raw.pick !== undefined && raw.pick !== "")
      scene.pick = c.number(raw.pick, [...path, "pick"], 1, { min: 1, max: takes, integer: true });
    // After `source`, so a seed scene's keys keep their order.
    Object.assign(scene, family.fields);
    scenes.push(scene);
    links.push({ scene, path, continueFrom: family.continueFrom });
  }
  if (links.some((l) => l.continueFrom !== undefined)) linkContinuations(links, c);
  if (items > maxItems)
    c.add(
      ["scenes"],
      `${items} generations (scenes × takes) is more than the ${maxItems} one manifest may hold (raise it with HAILUO_MAX_ITEMS)`,
    );
  return scenes;
}

/** The `assemble:` section (or `assemble: true`): transition, cards, audio bed, output. */
function readAssemble(value: unknown, c: FieldChecker): AssembleSpec | undefined {
  let assemble: AssembleSpec | undefined;
  const a = value === true ? {} : c.object(value, ["assemble"]);
  if (a) {
    c.keys(a, ["assemble"], ASSEMBLE_KEYS);
    const output = c.string(a.output, ["assemble", "output"]) ?? "film.mp4";
    if (!isSafeId(output) || !/\.mp4$/i.test(output))
      c.add(
        ["assemble", "output"],
        `output must be a plain file name ending in .mp4, got ${quote(output)}`,
      );
    assemble = {
      transition: c.transition(a.transition, ["assemble", "transition"]) ?? {
        type: "cut",
        durationS: 0,
      },
      output,
      placeholders: c.bool(a.placeholders, ["assemble", "placeholders"], false),
    };
    const title = a.title === undefined ? undefined : c.card(a.title, ["assemble", "title"]);
    if (title) assemble.title = title;
    const end = a.end === undefined ? undefined : c.card(a.end, ["assemble", "end"]);
    if (end) assemble.end = end;
    if (a.audio !== undefined && a.audio !== null) {
      const au =
        typeof a.audio === "string" ? { file: a.audio } : c.object(a.audio, ["assemble", "audio"]);
      if (au) {
        c.keys(au, ["assemble", "audio"], AUDIO_KEYS);
        const file = c.string(au.file, ["assemble", "audio", "file"]);
        if (!file) c.add(["assemble", "audio", "file"], "audio needs a file");
        assemble.audio = {
          file: file ?? "",
          volume: c.number(au.volume, ["assemble", "audio", "volume"], 1, { min: 0, max: 4 }),
          fadeInS: c.number(au.fade_in, ["assemble", "audio", "fade_in"], 1, { min: 0, max: 30 }),
          fadeOutS: c.number(au.fade_out, ["assemble", "audio", "fade_out"], 2, {
            min: 0,
            max: 30,
          }),
          source: c.ref(
            typeof a.audio === "string" ? ["assemble", "audio"] : ["assemble", "audio", "file"],
          ),
        };
      }
    }
  }
  return assemble;
}
