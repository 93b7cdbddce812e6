import { SEED_ENDPOINT } from "./endpoints.js";
import type { HailuoInput, HailuoInputLike } from "./hailuo-input.js";

const SEED_PRICE = SEED_ENDPOINT.price.unit === "second" ? SEED_ENDPOINT.price.usdPerSecond : NaN;

/**
 * fal's list price of the seed endpoint, USD per generated second, by resolution (read from its
 * record in endpoints.ts, where every endpoint's price lives).
 */
export const PRICE_USD_PER_SECOND: { readonly "768p": number } = { "768p": SEED_PRICE };

/** Seconds and dollars one generation costs. */
export interface CostEstimate {
  seconds: number;
  usd: number;
}

/** Cost of generating one clip for this input (at `usdPerSecond`, by default the built-in $0.045 at 768p). */
export function estimateCost(
  input: Pick<HailuoInput | HailuoInputLike, "duration">,
  usdPerSecond: number = PRICE_USD_PER_SECOND["768p"],
): CostEstimate {
  const seconds = Number(input.duration ?? 6);
  // Round to micro-dollars so sums of many clips don't drift in floating point.
  return { seconds, usd: Math.round(seconds * usdPerSecond * 1e6) / 1e6 };
}
