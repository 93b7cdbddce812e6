export type {
  Manifest,
  Scene,
  Reroll,
  SourceRef,
  AssembleSpec,
  CardSpec,
  AudioSpec,
  ThumbnailSpec,
  TransitionSpec,
  ImageSource,
  FileImage,
  UrlImage,
  UnreadImage,
} from "./manifest-types.js";
export { ENDPOINT_SCENE_KEYS, I2V_DEFAULT_ENDPOINT, sceneEndpoint } from "./scene-endpoint.js";
export { readImageFile, readSceneImages } from "./scene-images.js";
export {
  takeRequest,
  type ImageSlot,
  type LastFrameImage,
  type TakeInput,
  type TakeRequest,
} from "./take-input.js";
export { ManifestError } from "./manifest-error.js";
export { parseManifest, formatFromFile } from "./parse-manifest.js";
export {
  MAX_MANIFEST_BYTES,
  MAX_ITEMS,
  MAX_TAKES,
  TRANSITIONS,
  manifestLimits,
  type ManifestLimits,
  type ParseOptions,
} from "./manifest-limits.js";
export { manifestFromData, readYamlSource } from "./yaml-source.js";
export { FieldChecker, type Path, type Locate } from "./field-checker.js";
export { isSafeId, slugify } from "./scene-ids.js";
export { loadManifest } from "./load-manifest.js";
export { checkRecordedManifest } from "./recorded-manifest.js";
export { renderTemplate, runVariables, calendarParts } from "./template.js";
