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
export function estimateCost(input: Pick<HailuoInput | HailuoInputLike, "duration">, usdPerSecond: number = PRICE_USD_PER_SECOND["768p"]): CostEstimate {
  const seconds = Number(input.duration ?? 6);
  // Round to micro-dollars so sums of many clips don't drift in floating point.
  return { seconds, usd: Math.round(seconds * usdPerSecond * 1e6) / 1e6 };
}

/** The price an estimate used, and where it came from. */
export interface LivePrice {
  usdPerSecond: number;
  source: "fal pricing API" | "built-in price table";
  /** Why the built-in table was used, when it was. */
  reason?: string;
}

const livePrices = new WeakMap<object, Promise<LivePrice>>();

/**
 * The account's price for this endpoint from fal's pricing API (cached per client), or the
 * built-in table when the API cannot answer; the result says which was used.
 */
export function livePrice(client: { platform: { pricing(endpointId: string): Promise<{ unit_price: number; unit: string; currency: string } | undefined> } }, endpointId: string): Promise<LivePrice> {
  let p = livePrices.get(client);
  if (!p) {
    p = client.platform.pricing(endpointId).then(
      (row) =>
        row && row.currency === "USD" && /second/.test(row.unit) && Number.isFinite(row.unit_price)
          ? { usdPerSecond: row.unit_price, source: "fal pricing API" as const }
          : { usdPerSecond: PRICE_USD_PER_SECOND["768p"], source: "built-in price table" as const, reason: row ? `fal quoted ${row.unit_price} ${row.currency} per ${row.unit}` : "fal listed no price" },
      (error: Error) => ({ usdPerSecond: PRICE_USD_PER_SECOND["768p"], source: "built-in price table" as const, reason: error.message }),
    );
    livePrices.set(client, p);
  }
  return p;
}
