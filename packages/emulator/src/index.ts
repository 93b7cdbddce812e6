export {
  createEmulator,
  EMULATED_PRICE_USD_PER_SECOND,
  type Emulator,
  type EmulatorOptions,
} from "./emulator.js";
export { inputHash, EMULATED_ENDPOINT, EMULATED_ENDPOINTS } from "./wire.js";
export type { EmulatorStats, EndpointStats } from "./stats.js";
export type { Behaviour, EmulatorClock } from "./request-store.js";
export {
  parseFaultFlag,
  seededRandom,
  type FaultConfig,
  type FaultRule,
  type FileFault,
  type FaultRoute,
  type FaultKind,
} from "./faults.js";
export {
  AnimaticRenderer,
  wrapText,
  promptColors,
  type RenderSpec,
  type ImageClipSpec,
} from "./render.js";
