import { isAbsolute, posix, win32 } from "node:path";
import {
  ENDPOINTS,
  SEED_ENDPOINT_ID,
  checkRecordInput,
  effectiveParams,
  findEndpoint,
  type ClipResolution,
  type EndpointRecord,
  type HailuoDuration,
} from "@hailuo/endpoints";
import { closest, distance } from "fastest-levenshtein";
import { quote, type FieldChecker, type Path } from "./field-checker.js";
import type { ImageSource, Scene } from "./manifest-types.js";

/**
 * The scene fields that choose an endpoint of the family and its images. A scene that uses none
 * of them (nor `defaults.model` / `defaults.resolution`) is a seed scene, parsed as it always was.
 */
export const ENDPOINT_SCENE_KEYS = ["model", "resolution", "image", "end_image", "continue_from"];

/** The model of a scene with an image (or `continue_from`) that names none. */
export const I2V_DEFAULT_ENDPOINT = "fal-ai/minimax/hailuo-02/standard/image-to-video";

/** Every resolution of the family, as fal spells them. */
const RESOLUTIONS: readonly ClipResolution[] = ["512P", "768P", "1080P"];

// Stands in for an image in `checkRecordInput` (which wants a URL): the manifest checks the
// file itself; the record's rules only ask whether a frame is given.
const SOME_IMAGE = "https://image.invalid/frame.png";

/** The endpoint id a scene runs on: its own, or the seed's for a seed scene. */
export function sceneEndpoint(scene: Pick<Scene, "endpoint">): string {
  return scene.endpoint ?? SEED_ENDPOINT_ID;
}

/** `defaults.model` and `defaults.resolution`, each only when given. */
export interface EndpointDefaults {
  model?: string;
  resolution?: ClipResolution;
  /** `defaults.model` was given but names no endpoint (already reported once there). */
  badModel?: true;
  /** `defaults.duration` was given (so a scene on a 6 s-only endpoint is held to it). */
  durationGiven: boolean;
}

function unknownModel(id: string): string {
  const known = ENDPOINTS.map((e) => e.id);
  const guess = closest(id, known);
  const hint = distance(id, guess) <= Math.max(3, Math.floor(id.length / 4));
  return `unknown model ${quote(id)}${hint ? `; did you mean "${guess}"?` : ""} (known: ${known.join(", ")})`;
}

/** A model id, checked against the records; undefined when absent or unknown (reported). */
export function readModel(value: unknown, path: Path, c: FieldChecker): string | undefined {
  const id = c.string(value, path)?.trim();
  if (!id) return undefined;
  if (findEndpoint(id)) return id;
  c.add(path, unknownModel(id));
  return undefined;
}

/** A resolution of the family (`768P`, `768p`, `768`), or undefined when absent or bad (reported). */
export function readResolution(
  value: unknown,
  path: Path,
  c: FieldChecker,
): ClipResolution | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const s = String(value).trim().toUpperCase();
  const r = /^\d+$/.test(s) ? `${s}P` : s;
  if ((RESOLUTIONS as readonly string[]).includes(r)) return r as ClipResolution;
  c.add(path, `resolution must be 512P, 768P or 1080P, got ${quote(value)}`);
  return undefined;
}

/**
 * An `image:` / `end_image:` value: an https URL, or a file beside the manifest (relative, never
 * leaving its folder). Pure: the file is read later by `readSceneImages`.
 */
function readImageRef(value: unknown, path: Path, c: FieldChecker): ImageSource | undefined {
  const s = c.string(value, path)?.trim();
  if (!s) return undefined;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(s)?.[1]?.toLowerCase();
  if (scheme === "https") {
    let host = "";
    try {
      host = new URL(s).hostname;
    } catch {
      // Reported below.
    }
    if (host) return { kind: "url", url: s };
    c.add(path, `not a valid https URL: ${quote(s)}`);
    return undefined;
  }
  // A Windows drive letter is a path, not a scheme: refused below as absolute.
  if (scheme && !/^[a-z]:[\\/]/i.test(s)) {
    c.add(
      path,
      scheme === "http"
        ? `use an https URL or a file beside the manifest, got ${quote(s)}`
        : `expected a file beside the manifest or an https URL, got ${quote(s)} (${scheme}: is not taken)`,
    );
    return undefined;
  }
  if (s.includes("\0")) {
    c.add(path, "a file name cannot hold a NUL character");
    return undefined;
  }
  if (isAbsolute(s) || win32.isAbsolute(s)) {
    c.add(
      path,
      `name the file relative to the manifest's folder, got the absolute path ${quote(s)}`,
    );
    return undefined;
  }
  const normal = posix.normalize(s.replaceAll("\\", "/"));
  if (normal === ".." || normal.startsWith("../")) {
    c.add(path, `${quote(s)} leaves the manifest's folder: images must lie in it or below it`);
    return undefined;
  }
  return { kind: "unread", path: normal, source: c.ref(path) };
}

/** The endpoints of a kind that can render a duration or resolution, for hints. */
function rendering(kind: EndpointRecord["kind"], name: "duration" | "resolution", v: string) {
  return ENDPOINTS.filter((e) => {
    if (e.kind !== kind) return false;
    const spec = e.fields[name];
    return spec?.type === "enum" ? spec.values.includes(v) : e.fixed[name] === v;
  }).map((e) => e.id);
}

/** The image-to-video sibling of a text-to-video record (same model and tier), for hints. */
function i2vSibling(record: EndpointRecord): string {
  return (
    ENDPOINTS.find((e) => e.kind === "i2v" && e.model === record.model && e.tier === record.tier)
      ?.id ?? I2V_DEFAULT_ENDPOINT
  );
}

/** What a scene says about its endpoint and images, before scenes are linked. */
export interface SceneEndpointFields {
  /** Set on a scene that uses any field of the family; empty for a seed scene. */
  fields: Pick<Scene, "endpoint" | "resolution" | "image" | "endImage">;
  /** The clip's length: the one asked for, or what the endpoint renders fixed. */
  duration: HailuoDuration;
  /** `continue_from:` as written (`previous` or a scene id), linked by `linkContinuations`. */
  continueFrom?: string;
}

/** A scene's values that the endpoint checks. */
export interface SceneValues {
  prompt: string;
  duration: HailuoDuration;
  /** The scene or the defaults named a duration (else it is the default 6 s). */
  durationGiven: boolean;
  prompt_optimizer: boolean;
}

/**
 * Reads a scene's `model`, `resolution`, `image`, `end_image` and `continue_from` and checks
 * them against the endpoint's record: a field it does not take, a duration or resolution it
 * does not render, an image-to-video model without a first frame. Every problem is added to `c`
 * at the field's line. Pure.
 */
export function readSceneEndpoint(
  raw: Record<string, unknown>,
  path: Path,
  c: FieldChecker,
  defaults: EndpointDefaults,
  values: SceneValues,
): SceneEndpointFields {
  const at = (key: string): Path => [...path, key];
  const ownModel = readModel(raw.model, at("model"), c);
  const badModel = raw.model !== undefined && raw.model !== "" && ownModel === undefined;
  const ownResolution = readResolution(raw.resolution, at("resolution"), c);
  const image = readImageRef(raw.image, at("image"), c);
  const endImage = readImageRef(raw.end_image, at("end_image"), c);
  const cf = c.string(raw.continue_from, at("continue_from"))?.trim() || undefined;
  const given = (k: string) => raw[k] !== undefined && raw[k] !== null && raw[k] !== "";
  const uses =
    ENDPOINT_SCENE_KEYS.some(given) ||
    defaults.model !== undefined ||
    defaults.badModel ||
    defaults.resolution !== undefined;
  const seed = { fields: {}, duration: values.duration };
  if (!uses) return seed;
  const result: SceneEndpointFields = { ...seed, ...(cf ? { continueFrom: cf } : {}) };
  // A model already refused (here or in defaults) is not checked further: one problem, not ten.
  if (badModel || (ownModel === undefined && defaults.badModel)) return result;

  const framed = given("image") || given("continue_from") || given("end_image");
  const modelFrom = ownModel ? "" : defaults.model ? " (from defaults.model)" : "";
  const id = ownModel ?? defaults.model ?? (framed ? I2V_DEFAULT_ENDPOINT : SEED_ENDPOINT_ID);
  const record = findEndpoint(id)!;
  // Whether a first frame is asked for, even one refused above: one problem per slip.
  const firstFrame = given("image") || cf !== undefined;
  const modelPath = ownModel ? at("model") : path;
  if (cf !== undefined && given("image"))
    c.add(
      at("continue_from"),
      "continue_from and image both give the first frame: keep one (a continuing scene starts " +
        "on its source's last frame)",
    );
  if (record.kind === "t2v") {
    for (const [key, what] of [
      ["image", "first frame (image:)"],
      ["continue_from", "first frame (continue_from:)"],
      ["end_image", "end frame (end_image:)"],
    ] as const)
      if (given(key))
        c.add(
          at(key),
          `model ${id}${modelFrom} is text-to-video and takes no ${what}; use an image-to-video ` +
            `model such as ${i2vSibling(record)}`,
        );
  } else {
    if (!given("image") && !given("continue_from"))
      c.add(
        given("end_image") ? at("end_image") : modelPath,
        `model ${id}${modelFrom} starts from an image: give image: or continue_from:` +
          (given("end_image") ? " (end_image is the last frame only)" : ""),
      );
    if (given("end_image") && !("end_image_url" in record.fields)) {
      const takers = ENDPOINTS.filter((e) => "end_image_url" in e.fields).map((e) => e.id);
      c.add(
        at("end_image"),
        `model ${id}${modelFrom} takes no end_image (an end frame is taken by ${takers.join(", ")})`,
      );
    }
  }

  const resolution = ownResolution ?? defaults.resolution;
  const body: Record<string, unknown> = {
    prompt: values.prompt,
    prompt_optimizer: values.prompt_optimizer,
  };
  if (values.durationGiven) body.duration = values.duration;
  if (resolution) body.resolution = resolution;
  if (record.kind === "i2v") {
    if (firstFrame) body.image_url = SOME_IMAGE;
    if (given("end_image") && "end_image_url" in record.fields) body.end_image_url = SOME_IMAGE;
  }
  let refused = false;
  for (const p of checkRecordInput(record, body)) {
    // The prompt is checked with the seed's words; images were judged above.
    if (p.field !== "duration" && p.field !== "resolution") continue;
    refused = true;
    const value = p.field === "duration" ? values.duration : (resolution ?? "");
    const inherited = p.field === "duration" ? !given("duration") : !ownResolution;
    const from = inherited ? ` (${p.field} ${value} from defaults.${p.field})` : "";
    const model = `model ${id}${modelFrom}`;
    // The record's words, with the endpoint named: "this endpoint renders 6 s only …".
    const message = p.message.startsWith("this endpoint ")
      ? `${model} ${p.message.slice("this endpoint ".length)}${from}`
      : p.message.startsWith("must be")
        ? `${p.field} ${p.message}${from} (${model})`
        : `${p.field} ${value}: ${p.message}${from} (${model})`;
    const others = rendering(record.kind, p.field, value).filter((e) => e !== id);
    const unit = p.field === "duration" ? " s" : "";
    c.add(
      at(p.field),
      message + (others.length ? `; ${value}${unit} is rendered by ${others.join(", ")}` : ""),
    );
  }
  const params = effectiveParams(record, {
    ...body,
    duration: body.duration ?? values.duration,
  });
  const fields: SceneEndpointFields["fields"] = { endpoint: id };
  if (!refused) fields.resolution = params.resolution;
  if (image) fields.image = image;
  if (endImage) fields.endImage = endImage;
  return {
    ...result,
    fields,
    duration: refused ? values.duration : (params.duration as HailuoDuration),
  };
}

/**
 * Links `continue_from` to scene ids (`previous`: the scene before, in manifest order) and
 * refuses a source that does not exist, the scene itself, or a cycle (naming its chain). A
 * later scene is a fine source when no cycle comes of it. Sets `continueFrom` on each scene.
 */
export function linkContinuations(
  scenes: { scene: Scene; path: Path; continueFrom?: string }[],
  c: FieldChecker,
): void {
  const index = new Map<string, number>();
  scenes.forEach(({ scene }, i) => {
    if (!index.has(scene.id)) index.set(scene.id, i);
  });
  const next: (number | undefined)[] = scenes.map(({ scene, path, continueFrom }, i) => {
    if (continueFrom === undefined) return undefined;
    const at: Path = [...path, "continue_from"];
    if (continueFrom === "previous") {
      if (i === 0) {
        c.add(at, "the first scene has no previous scene to continue from");
        return undefined;
      }
      scene.continueFrom = scenes[i - 1]!.scene.id;
      return i - 1;
    }
    const target = index.get(continueFrom);
    if (target === undefined) {
      const ids = [...index.keys()];
      const guess = ids.length ? closest(continueFrom, ids) : "";
      const near = distance(continueFrom, guess);
      c.add(
        at,
        `no scene has id ${quote(continueFrom)}` +
          (guess && near < continueFrom.length && near <= Math.max(2, continueFrom.length / 3)
            ? `; did you mean "${guess}"?`
            : "") +
          " (continue_from takes `previous` or a scene id)",
      );
      return undefined;
    }
    if (target === i) {
      c.add(at, `scene ${quote(scene.id)} cannot continue from itself`);
      return undefined;
    }
    scene.continueFrom = scenes[target]!.scene.id;
    return target;
  });
  // Each scene has one source at most: a cycle is found by walking from each scene in turn.
  const done = new Set<number>();
  for (let start = 0; start < scenes.length; start++) {
    const walk: number[] = [];
    let i: number | undefined = start;
    while (i !== undefined && !done.has(i) && !walk.includes(i)) {
      walk.push(i);
      i = next[i];
    }
    if (i !== undefined && walk.includes(i)) {
      const cycle = walk.slice(walk.indexOf(i));
      const first = Math.min(...cycle);
      const from = cycle.indexOf(first);
      const chain = [...cycle.slice(from), ...cycle.slice(0, from), first].map(
        (n) => scenes[n]!.scene.id,
      );
      c.add(
        [...scenes[first]!.path, "continue_from"],
        `continue_from makes a cycle: ${chain.join(" → ")} (each continues from the next; a ` +
          "chain must start from a scene with its own first frame)",
      );
    }
    for (const n of walk) done.add(n);
  }
}
