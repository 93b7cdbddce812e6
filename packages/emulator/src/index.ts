export { createEmulator, inputHash, EMULATED_ENDPOINT, EMULATED_PRICE_USD_PER_SECOND, type Emulator, type EmulatorOptions, type EmulatorStats } from "./emulator.js";
export { parseFaultFlag, seededRandom, type FaultConfig, type FaultRule, type FaultRoute, type FaultKind } from "./faults.js";
export { AnimaticRenderer, wrapText, promptColors, type RenderSpec } from "./render.js";
