import { checkHailuoInput } from "@hailuo/spec";
import { ManifestError } from "./manifest-error.js";
import type { Manifest } from "./manifest-types.js";
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

/**
 * Checks a manifest as a run folder records it (run.json: written by us, but a file anyone can
 * edit) with the rules a manifest file is read with: safe unique ids, inputs the endpoint takes,
 * takes and picks in range, a safe film name. `text` is the file's text, read again only when
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
