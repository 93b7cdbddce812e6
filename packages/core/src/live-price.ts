import {
  PRICE_USD_PER_SECOND,
  SEED_ENDPOINT,
  effectiveParams,
  findEndpoint,
  type EndpointRecord,
} from "@hailuo/endpoints";

/** The price an estimate used, and where it came from. */
export interface LivePrice {
  /**
   * USD per generated second. For an endpoint billed per video (Hailuo 2.3) this is the
   * per-second equivalent at its default length, for display only: figure its costs with
   * `priceOf(endpointId, input, { unitPriceUsd })`.
   */
  usdPerSecond: number;
  /**
   * The price in the endpoint's billing unit, as fal's pricing API quotes it (`unit_price`).
   * Absent in a price someone wrote by hand (`--price`): that one is `usdPerSecond`.
   */
  unitPriceUsd?: number;
  /** How the endpoint bills: per generated second or per video (its record's price rule). @default "second" */
  unit?: "second" | "video";
  source: "fal pricing API" | "built-in price table" | "--price";
  /**
   * The account's own price (fal's pricing API answered, or the user said it). False: the list
   * price, assumed because fal could not say; budgets and reports must not trust it.
   */
  verified: boolean;
  /** Why the built-in table was used, when it was. */
  reason?: string;
}

// One quote per client and endpoint: a run that mixes endpoints asks for each once.
const livePrices = new WeakMap<object, Map<string, Promise<LivePrice>>>();

/** An id without a record is priced as the seed, per second (the table's only price before records). */
function recordOf(endpointId: string): EndpointRecord {
  return findEndpoint(endpointId) ?? SEED_ENDPOINT;
}

function quote(
  record: EndpointRecord,
  unitPriceUsd: number,
): Pick<LivePrice, "usdPerSecond" | "unitPriceUsd" | "unit"> {
  const unit = record.price.unit;
  const seconds = Number(effectiveParams(record, {}).duration);
  return {
    usdPerSecond: unit === "second" ? unitPriceUsd : unitPriceUsd / seconds,
    unitPriceUsd,
    unit,
  };
}

/** The list price, said to be an assumption and why. */
function listPrice(record: EndpointRecord, reason: string): LivePrice {
  const p = record.price;
  const base =
    record === SEED_ENDPOINT
      ? PRICE_USD_PER_SECOND["768p"]
      : p.unit === "second"
        ? p.usdPerSecond
        : p.usdPerVideo;
  return { ...quote(record, base), source: "built-in price table", verified: false, reason };
}

/** Whether fal's unit names the record's: "second"/"video_second", or a video/clip/generation. */
function sameUnit(record: EndpointRecord, unit: string): boolean {
  return record.price.unit === "second"
    ? /second/.test(unit)
    : /^(video|clip|generation|request)s?$/.test(unit);
}

/**
 * The account's price for an endpoint from fal's pricing API (cached per client and endpoint),
 * or the endpoint's list price from its record, unverified, when the API cannot answer or quotes
 * in another unit than the record bills in; the result says which was used.
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
  let byEndpoint = livePrices.get(client);
  if (!byEndpoint) livePrices.set(client, (byEndpoint = new Map()));
  const cached = byEndpoint.get(endpointId);
  if (cached) return cached;
  const record = recordOf(endpointId);
  const p = client.platform.pricing(endpointId).then(
    (row) =>
      row &&
      row.currency === "USD" &&
      sameUnit(record, row.unit) &&
      Number.isFinite(row.unit_price) &&
      row.unit_price > 0
        ? { ...quote(record, row.unit_price), source: "fal pricing API" as const, verified: true }
        : listPrice(
            record,
            row
              ? `fal quoted ${row.unit_price} ${row.currency} per ${row.unit}`
              : "fal listed no price",
          ),
    (error: Error) => {
      // Not remembered: a long-lived worker or scheduler asks again after a network blip.
      byEndpoint.delete(endpointId);
      return listPrice(record, error.message);
    },
  );
  byEndpoint.set(endpointId, p);
  return p;
}
