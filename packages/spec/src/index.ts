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
