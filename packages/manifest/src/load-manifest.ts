import { createReadStream } from "node:fs";
import { access, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { readCsvManifest } from "./csv-source.js";
import { readJsonlManifest } from "./jsonl-source.js";
import { ManifestError } from "./manifest-error.js";
import { manifestLimits, type ParseOptions } from "./manifest-limits.js";
import { formatFromFile, parseManifest } from "./parse-manifest.js";
import type { Manifest } from "./manifest-types.js";
import { readSceneImages } from "./scene-images.js";

/**
 * The file's text, chunk by chunk. A picture, a song or a video is not a manifest: a NUL in its
 * first 4 KiB or bytes that are not UTF-8 give one clear line instead of dozens of parse errors.
 */
async function* textOf(file: string): AsyncGenerator<string> {
  const binary = () =>
    new ManifestError(file, [
      {
        file,
        field: "",
        message: "not a manifest: this is binary data, not YAML, CSV or JSONL text",
      },
    ]);
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let first = true;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    if (first && chunk.subarray(0, 4096).includes(0)) throw binary();
    first = false;
    try {
      yield decoder.decode(chunk, { stream: true });
    } catch {
      throw binary();
    }
  }
  try {
    yield decoder.decode();
  } catch {
    throw binary();
  }
}

/**
 * Reads a manifest file (size-checked before reading) and parses it. CSV and JSONL are parsed as
 * they stream in (a row becomes a scene as it is read); YAML, one document, is read whole. Then
 * the files it names are checked: the audio bed, and each scene's images (`readSceneImages`).
 */
export async function loadManifest(
  file: string,
  options: Omit<ParseOptions, "file"> = {},
): Promise<Manifest> {
  const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new ManifestError(file, [
      { file, field: "", message: error.code === "ENOENT" ? "no such file" : error.message },
    ]);
  });
  if (!info.isFile()) throw new ManifestError(file, [{ file, field: "", message: "not a file" }]);
  const { maxBytes } = manifestLimits(options.limits);
  if (info.size > maxBytes)
    throw new ManifestError(file, [
      {
        file,
        field: "",
        message: `file is ${info.size} bytes; manifests are limited to ${maxBytes} bytes (raise it with HAILUO_MAX_MANIFEST_BYTES)`,
      },
    ]);
  const format = options.format ?? formatFromFile(file);
  const opts = { ...options, file };
  let manifest: Manifest;
  if (format === "csv") manifest = await readCsvManifest(textOf(file), opts, file);
  else if (format === "jsonl") manifest = await readJsonlManifest(textOf(file), opts, file);
  else {
    let text = "";
    for await (const chunk of textOf(file)) text += chunk;
    manifest = parseManifest(text, opts);
  }
  // The audio bed is the one file a manifest names: check it now, not after every clip is paid.
  const audio = manifest.assemble?.audio;
  if (audio?.file) {
    const path = resolve(dirname(file), audio.file);
    await access(path).catch(() => {
      throw new ManifestError(file, [
        {
          file,
          line: audio.source?.line,
          column: audio.source?.column,
          field: "assemble.audio.file",
          message: `audio file ${path} not found (paths are relative to the manifest's folder)`,
        },
      ]);
    });
  }
  // Images too: a missing or unusable start frame is refused before anything is paid.
  return readSceneImages(manifest, dirname(file));
}
