export {
  createEmulator,
  EMULATED_PRICE_USD_PER_SECOND,
  type Emulator,
  type EmulatorOptions,
} from "./emulator.js";
export { inputHash, EMULATED_ENDPOINT } from "./wire.js";
export type { EmulatorStats } from "./stats.js";
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
export { AnimaticRenderer, wrapText, promptColors, type RenderSpec } from "./render.js";
