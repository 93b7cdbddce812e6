import type { HailuoInput, HailuoInputLike } from "./hailuo-input.js";

/**
 * fal's price list for this endpoint, USD per generated second, by resolution.
 * The one place prices live: estimates, budgets and reports all read it.
 */
export const PRICE_USD_PER_SECOND = { "768p": 0.045 } as const;

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
