export type { Manifest, Scene, SourceRef, AssembleSpec, CardSpec, AudioSpec, ThumbnailSpec, TransitionSpec } from "./manifest-types.js";
export { ManifestError } from "./manifest-error.js";
export { parseManifest, manifestFromData, formatFromFile, isSafeId, slugify, readYamlSource, FieldChecker, MAX_MANIFEST_BYTES, MAX_ITEMS, MAX_TAKES, TRANSITIONS, type ParseOptions, type Path, type Locate } from "./parse-manifest.js";
export { loadManifest } from "./load-manifest.js";
export { renderTemplate, runVariables, calendarParts } from "./template.js";
