export type { Manifest, Scene, SourceRef, AssembleSpec, CardSpec, AudioSpec, ThumbnailSpec, TransitionSpec } from "./manifest-types.js";
export { ManifestError } from "./manifest-error.js";
export { parseManifest, formatFromFile, isSafeId, slugify, MAX_MANIFEST_BYTES, MAX_ITEMS, MAX_TAKES, TRANSITIONS, type ParseOptions } from "./parse-manifest.js";
export { loadManifest } from "./load-manifest.js";
export { renderTemplate, runVariables } from "./template.js";
