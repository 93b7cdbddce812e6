import {
  IMAGE_RULES,
  checkHailuoInput,
  checkImageFacts,
  checkInput,
  findEndpoint,
  type EndpointRecord,
} from "@hailuo/endpoints";
import { isAbsolute } from "node:path";
import { ManifestError } from "./manifest-error.js";
import type { ImageSource, Manifest, Scene } from "./manifest-types.js";
import { FieldChecker, quote, type Locate, type Path } from "./field-checker.js";
import { MAX_TAKES, TRANSITIONS } from "./manifest-limits.js";
import { isSafeId } from "./scene-ids.js";
import { readYamlSource } from "./yaml-source.js";

const isInt = (v: unknown, min: number, max: number): v is number =>
  Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

/** Runs every rule over a recorded manifest at `root` (its path inside the file). */
function checkInto(c: FieldChecker, m: Manifest, root: Path): void {
  if (typeof m !== "object" || m === null)
    return c.add(root, "expected the manifest a run records");
  if (typeof m.name !== "string") c.add([...root, "name"], "expected a string");
  if (!Array.isArray(m.scenes) || m.scenes.length === 0)
    return c.add([...root, "scenes"], "a run needs at least one scene");
  const ids = new Set<string>();
  m.scenes.forEach((s, i) => {
    const at: Path = [...root, "scenes", i];
    if (typeof s !== "object" || s === null) return c.add(at, "expected a scene");
    if (typeof s.id !== "string" || !isSafeId(s.id))
      c.add(
        [...at, "id"],
        `id ${quote(s.id)} is not a safe file name: letters, digits, ".", "_" and "-" only (no "/", "\\" or "..")`,
      );
    else if (ids.has(s.id)) c.add([...at, "id"], `duplicate id ${quote(s.id)}`);
    else ids.add(s.id);
    const hasFamilyFields =
      s.endpoint !== undefined ||
      s.resolution !== undefined ||
      s.image !== undefined ||
      s.endImage !== undefined ||
      s.continueFrom !== undefined;
    if (hasFamilyFields) checkFamily(c, s, at);
    else
      for (const p of checkHailuoInput({
        prompt: s.prompt,
        duration: s.duration,
        prompt_optimizer: s.prompt_optimizer,
      }))
        c.add([...at, p.field], `${p.field} ${p.message}`);
    if (!isInt(s.takes, 1, MAX_TAKES))
      c.add(
        [...at, "takes"],
        `takes must be a whole number from 1 to ${MAX_TAKES}, got ${quote(s.takes)}`,
      );
    const takes = new Set(
      Array.from({ length: isInt(s.takes, 1, MAX_TAKES) ? s.takes : 0 }, (_, t) => t + 1),
    );
    if (s.rerolls !== undefined && !Array.isArray(s.rerolls))
      c.add([...at, "rerolls"], "expected a list");
    (Array.isArray(s.rerolls) ? s.rerolls : []).forEach((r, j) => {
      const rat: Path = [...at, "rerolls", j];
      if (!isInt(r?.take, 1, 10_000) || takes.has(r.take))
        c.add([...rat, "take"], `take ${quote(r?.take)} is not a new take number`);
      else takes.add(r.take);
      for (const p of checkHailuoInput({
        prompt: r?.prompt,
        duration: s.duration,
        prompt_optimizer: s.prompt_optimizer,
      }))
        if (p.field === "prompt") c.add([...rat, "prompt"], `prompt ${p.message}`);
    });
    if (s.pick !== undefined && !takes.has(s.pick))
      c.add([...at, "pick"], `pick ${quote(s.pick)} is not one of the scene's takes`);
    if (
      s.transition !== undefined &&
      !(TRANSITIONS as readonly string[]).includes(s.transition?.type)
    )
      c.add([...at, "transition"], `unknown transition ${quote(s.transition?.type)}`);
  });
  checkChains(c, m.scenes, root);
  const a = m.assemble;
  if (a === undefined) return;
  if (typeof a.output !== "string" || !isSafeId(a.output) || !/\.mp4$/i.test(a.output))
    c.add(
      [...root, "assemble", "output"],
      `output must be a plain file name ending in .mp4, got ${quote(a.output)}`,
    );
  if (a.audio !== undefined && (typeof a.audio?.file !== "string" || a.audio.file === ""))
    c.add([...root, "assemble", "audio", "file"], "audio needs a file");
}

const PLACEHOLDER = "https://image.invalid/frame.png";
const SHA256 = /^[0-9a-f]{64}$/;

/** A recorded image: a file read and checked when the run began, or an https URL. */
function checkImage(c: FieldChecker, image: ImageSource, at: Path): void {
  if (typeof image !== "object" || image === null) return c.add(at, "expected an image");
  if (image.kind === "url") {
    if (typeof image.url !== "string" || !/^https:\/\/\S+$/.test(image.url))
      c.add(at, `expected an https URL, got ${quote(image.url)}`);
    return;
  }
  if (image.kind === "unread")
    return c.add(
      at,
      `image ${quote(image.path)} was never read and checked (run.json records read images)`,
    );
  if (image.kind !== "file")
    return c.add(at, `unknown image kind ${quote((image as ImageSource).kind)}`);
  if (typeof image.path !== "string" || !isAbsolute(image.path))
    c.add([...at, "path"], `expected an absolute path, got ${quote(image.path)}`);
  if (typeof image.sha256 !== "string" || !SHA256.test(image.sha256))
    c.add([...at, "sha256"], `expected a hex SHA-256, got ${quote(image.sha256)}`);
  const facts = [image.bytes, image.width, image.height];
  if (!facts.every((n) => Number.isInteger(n) && n > 0))
    return c.add(at, "expected whole numbers of bytes, width and height");
  for (const problem of checkImageFacts(image, IMAGE_RULES)) c.add(at, `image ${problem}`);
}

/** A scene of the family: its endpoint, the input it takes, its images. */
function checkFamily(c: FieldChecker, s: Scene, at: Path): void {
  const record: EndpointRecord | undefined =
    typeof s.endpoint === "string" ? findEndpoint(s.endpoint) : undefined;
  if (!record) return c.add([...at, "endpoint"], `unknown endpoint ${quote(s.endpoint)}`);
  if (s.image !== undefined) checkImage(c, s.image, [...at, "image"]);
  if (s.endImage !== undefined) checkImage(c, s.endImage, [...at, "endImage"]);
  if (s.continueFrom !== undefined && s.image !== undefined)
    c.add(
      [...at, "continueFrom"],
      "a scene continues from another or starts on its image, not both",
    );
  const body: Record<string, unknown> = {
    prompt: s.prompt,
    duration: s.duration,
    prompt_optimizer: s.prompt_optimizer,
  };
  if (s.resolution !== undefined) body.resolution = s.resolution;
  if (s.image !== undefined || s.continueFrom !== undefined) body.image_url = PLACEHOLDER;
  if (s.endImage !== undefined) body.end_image_url = PLACEHOLDER;
  for (const p of checkInput(record.id, body)) {
    const first = s.continueFrom !== undefined ? "continueFrom" : "image";
    const field = { image_url: first, end_image_url: "endImage" }[p.field] ?? p.field;
    c.add([...at, field], `${field} ${p.message} (endpoint ${record.id})`);
  }
}

/** `continueFrom` names another scene of the run, and no chain comes back on itself. */
function checkChains(c: FieldChecker, scenes: Scene[], root: Path): void {
  const ids = new Map(scenes.map((s, i) => [s?.id, i]));
  scenes.forEach((s, i) => {
    const from = s?.continueFrom;
    if (from === undefined) return;
    const at: Path = [...root, "scenes", i, "continueFrom"];
    if (typeof from !== "string" || !ids.has(from) || from === s.id)
      return c.add(at, `continueFrom ${quote(from)} is not another scene of this run`);
    const seen = [s.id];
    for (let next = scenes[ids.get(from)!]; next; next = scenes[ids.get(next.continueFrom!)!]) {
      if (seen.includes(next.id)) {
        // Reported once, at the cycle's first scene in run order.
        if (next.id === s.id && Math.min(...seen.map((id) => ids.get(id)!)) === i)
          c.add(at, `continueFrom makes a cycle: ${[...seen, s.id].join(" → ")}`);
        return;
      }
      seen.push(next.id);
      if (next.continueFrom === undefined) return;
    }
  });
}

/**
 * Checks a manifest as a run folder records it (run.json: written by us, but a file anyone can
 * edit) with the rules a manifest file is read with: safe unique ids, inputs the endpoint takes,
 * images read and within MiniMax's rules, chains that end, takes and picks in range, a safe film
 * name. `text` is the file's text, read again only when
 * something is wrong, to name each problem's line. Throws ManifestError naming file, line and field.
 */
export function checkRecordedManifest(
  manifest: Manifest,
  file: string,
  options: { text?: string; root?: Path } = {},
): void {
  const root = options.root ?? [];
  const quick = new FieldChecker(file, () => ({}));
  checkInto(quick, manifest, root);
  if (!quick.problems.length) return;
  // JSON is YAML: its reader knows where every path is.
  let locate: Locate = () => ({});
  if (options.text !== undefined) {
    try {
      locate = readYamlSource(options.text, file).locate;
    } catch {
      // Unreadable as a document: the problems are still named by field.
    }
  }
  const located = new FieldChecker(file, locate);
  checkInto(located, manifest, root);
  throw new ManifestError(file, located.problems);
}
