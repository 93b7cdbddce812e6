import { PRICE_USD_PER_SECOND } from "@hailuo/spec";

/** The price an estimate used, and where it came from. */
export interface LivePrice {
  usdPerSecond: number;
  source: "fal pricing API" | "built-in price table" | "--price";
  /**
   * The account's own price (fal's pricing API answered, or the user said it). False: the list
   * price, assumed because fal could not say; budgets and reports must not trust it.
   */
  verified: boolean;
  /** Why the built-in table was used, when it was. */
  reason?: string;
}

const livePrices = new WeakMap<object, Promise<LivePrice>>();

/** The list price, said to be an assumption and why. */
function listPrice(reason: string): LivePrice {
  return {
    usdPerSecond: PRICE_USD_PER_SECOND["768p"],
    source: "built-in price table",
    verified: false,
    reason,
  };
}

/**
 * The account's price for this endpoint from fal's pricing API (cached per client), or the
 * built-in table, unverified, when the API cannot answer; the result says which was used.
 */
export function livePrice(
  client: {
    platform: {
      pricing(
        endpointId: string,
      ): Promise<{ unit_price: number; unit: string; currency: string } | undefined>;
    };
  },
  endpointId: string,
): Promise<LivePrice> {
  let p = livePrices.get(client);
  if (!p) {
    p = client.platform.pricing(endpointId).then(
      (row) =>
        row &&
        row.currency === "USD" &&
        /second/.test(row.unit) &&
        Number.isFinite(row.unit_price) &&
        row.unit_price > 0
          ? { usdPerSecond: row.unit_price, source: "fal pricing API" as const, verified: true }
          : listPrice(
              row
                ? `fal quoted ${row.unit_price} ${row.currency} per ${row.unit}`
                : "fal listed no price",
            ),
      (error: Error) => {
        // Not remembered: a long-lived worker or scheduler asks again after a network blip.
        livePrices.delete(client);
        return listPrice(error.message);
      },
    );
    livePrices.set(client, p);
  }
  return p;
}
