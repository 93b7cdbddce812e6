export {
  HAILUO_ENDPOINT,
  MAX_PROMPT_CHARS,
  DURATIONS,
  checkHailuoInput,
  normalizeHailuoInput,
  type HailuoDuration,
  type HailuoInput,
  type HailuoInputLike,
  type HailuoOutput,
  type FalFile,
} from "./hailuo-input.js";
export { PRICE_USD_PER_SECOND, estimateCost, type CostEstimate } from "./price.js";
export { emulatorHostUrl, hostFromEmulatorPath } from "./emulator-host.js";
export {
  ENDPOINTS,
  FAMILY_RULES,
  IMAGE_RULES,
  SEED_ENDPOINT,
  SEED_ENDPOINT_ID,
  UnknownEndpointError,
  endpointOf,
  findEndpoint,
  type ClipDuration,
  type ClipResolution,
  type Condition,
  type CrossFieldRule,
  type EndpointKind,
  type EndpointRecord,
  type FieldSpec,
  type ImageRules,
  type PriceRule,
} from "./endpoints.js";
export {
  brokenRules,
  cacheKeyParts,
  checkImageFacts,
  checkInput,
  checkRecordInput,
  effectiveParams,
  imageFields,
  normalizeInput,
  promptProblem,
  type CheckOptions,
  type EffectiveParams,
  type EndpointInput,
  type ImageFacts,
} from "./endpoint-input.js";
export { priceOf, type EndpointPrice, type PriceOptions } from "./endpoint-price.js";
export { readImageFacts, sniffImageFormat } from "./image-facts.js";
