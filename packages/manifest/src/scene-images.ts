import { createHash } from "node:crypto";
import { open, realpath } from "node:fs/promises";
import { isAbsolute, relative, resolve } from "node:path";
import { IMAGE_RULES, checkImageFacts, readImageFacts, type ImageRules } from "@hailuo/endpoints";
import type { FieldProblem } from "@hailuo/shared";
import { ManifestError } from "./manifest-error.js";
import type { FileImage, Manifest, UnreadImage } from "./manifest-types.js";

/** An image file that cannot be used, in words for the person who named it. */
class ImageProblem extends Error {}

/** Files read at once: enough to overlap the disk, few enough to hold 20 MB each in memory. */
const CONCURRENT_READS = 4;

/**
 * Reads an image file and checks it against MiniMax's rules (IMAGE_RULES): a regular file whose
 * real path lies inside `folder` (a symlink may not lead out of it), under 20 MB (refused from
 * its size, before reading), JPG/PNG/WebP by its magic bytes, short side over 300 px, aspect
 * between 2:5 and 5:2. Throws an Error whose message says what is wrong with the file.
 */
export async function readImageFile(
  path: string,
  folder: string,
  rules: ImageRules = IMAGE_RULES,
): Promise<FileImage> {
  const target = resolve(folder, path);
  const real = await realpath(target).catch((error: NodeJS.ErrnoException) => {
    throw new ImageProblem(
      error.code === "ENOENT"
        ? `image file ${target} not found (paths are relative to the manifest's folder)`
        : `image file ${target} cannot be read: ${error.code ?? error.message}`,
    );
  });
  const base = await realpath(folder);
  const inside = relative(base, real);
  if (inside.startsWith("..") || isAbsolute(inside))
    throw new ImageProblem(
      `image ${path} is a link out of the manifest's folder (to ${real}): ` +
        "images must lie in it or below it",
    );
  // Opened once: what is checked is what is read, even if the name is swapped meanwhile.
  const file = await open(real, "r").catch((error: NodeJS.ErrnoException) => {
    throw new ImageProblem(`image file ${target} cannot be read: ${error.code ?? error.message}`);
  });
  try {
    const info = await file.stat();
    if (!info.isFile()) throw new ImageProblem(`image ${path} is not a file`);
    const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;
    if (info.size >= rules.maxBytes)
      throw new ImageProblem(
        `image ${path} is ${mb(info.size)}; MiniMax takes images under ${rules.maxBytes / 1048576} MB`,
      );
    const bytes = await file.readFile().catch((error: NodeJS.ErrnoException) => {
      throw new ImageProblem(`image file ${target} cannot be read: ${error.code ?? error.message}`);
    });
    const facts = readImageFacts(bytes);
    if (!facts)
      throw new ImageProblem(`image ${path} is cut short or broken: its header cannot be read`);
    // Another format has no size to judge: its name is the whole problem.
    const problems = (rules.formats as readonly string[]).includes(facts.format)
      ? checkImageFacts(facts, rules)
      : [`is ${facts.format}; MiniMax reads JPG, PNG and WebP (judged by its bytes, not its name)`];
    if (problems.length) throw new ImageProblem(`image ${path} ${problems.join("; ")}`);
    return {
      kind: "file",
      path: real,
      sha256: createHash("sha256").update(bytes).digest("hex"),
      bytes: bytes.length,
      format: facts.format as FileImage["format"],
      width: facts.width,
      height: facts.height,
    };
  } finally {
    await file.close();
  }
}

/**
 * The loader's step after parsing: reads every image file a manifest names (relative to
 * `folder`, the manifest's own) and returns the manifest with each `unread` image replaced by
 * its `FileImage` (path, sha256, bytes, format, size). Parsing stays pure; this is its I/O.
 * Throws a ManifestError naming file, line and field of every image that cannot be used.
 */
export async function readSceneImages(manifest: Manifest, folder: string): Promise<Manifest> {
  const wanted: { at: number; key: "image" | "endImage"; ref: UnreadImage }[] = [];
  manifest.scenes.forEach((scene, at) => {
    for (const key of ["image", "endImage"] as const) {
      const ref = scene[key];
      if (ref?.kind === "unread") wanted.push({ at, key, ref });
    }
  });
  if (wanted.length === 0) return manifest;
  // The same file named by many scenes is read once.
  const reads = new Map<string, Promise<FileImage | ImageProblem>>();
  const read = (path: string) => {
    let p = reads.get(path);
    if (!p) {
      p = readImageFile(path, folder).catch((error: unknown) => {
        if (error instanceof ImageProblem) return error;
        throw error;
      });
      reads.set(path, p);
    }
    return p;
  };
  const results: (FileImage | ImageProblem)[] = new Array(wanted.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENT_READS, wanted.length) }, async () => {
      while (next < wanted.length) {
        const n = next++;
        results[n] = await read(wanted[n]!.ref.path);
      }
    }),
  );
  const problems: FieldProblem[] = [];
  const scenes = manifest.scenes.map((s) => ({ ...s }));
  wanted.forEach(({ at, key, ref }, n) => {
    const result = results[n]!;
    if (result instanceof ImageProblem)
      problems.push({
        file: ref.source.file,
        line: ref.source.line,
        column: ref.source.column,
        field: `scenes[${at}].${key === "image" ? "image" : "end_image"}`,
        message: result.message,
      });
    else scenes[at]![key] = result;
  });
  if (problems.length) throw new ManifestError(manifest.file, problems);
  return { ...manifest, scenes };
}
