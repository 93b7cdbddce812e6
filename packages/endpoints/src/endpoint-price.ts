import { InputValidationError } from "@hailuo/shared";
import { effectiveParams } from "./endpoint-input.js";
import { endpointOf, type EndpointRecord, type FieldSpec } from "./endpoints.js";

/** What one clip of an endpoint costs. */
export interface EndpointPrice {
  /** Seconds the clip lasts. */
  seconds: number;
  usd: number;
  /** How fal bills this endpoint: per generated second or per clip. */
  unit: "second" | "video";
  /** The unit price the cost was figured at (the record's base, or the account's). */
  unitPriceUsd: number;
}

/** Options of `priceOf`. */
export interface PriceOptions {
  /**
   * The account's price in the record's unit (fal's pricing API `unit_price`). fal prices
   * "per image/video with proportional adjustments for resolution/length" (fal docs, Platform
   * APIs → pricing), so the record's whole table is scaled by it: at $0.05/s instead of $0.045/s
   * on Hailuo 02 i2v, 512P costs 0.017 × 0.05 / 0.045 per second. @default the record's list price
   */
  unitPriceUsd?: number;
}

/** Rounds to micro-dollars, so sums of many clips don't drift in floating point. */
function micro(usd: number): number {
  return Math.round(usd * 1e6) / 1e6;
}

function readEnum(record: EndpointRecord, name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const spec = record.fields[name] as FieldSpec | undefined;
  const text = String(value).trim();
  const known =
    spec?.type === "enum"
      ? spec.values.find((v) => v.toLowerCase() === text.toLowerCase())
      : record.fixed[name as "duration" | "resolution"]?.toLowerCase() === text.toLowerCase()
        ? record.fixed[name as "duration" | "resolution"]
        : undefined;
  if (known === undefined)
    throw new InputValidationError([
      { field: name, message: `${record.id} has no price for ${name} ${JSON.stringify(value)}` },
    ]);
  return known;
}

/**
 * The cost of one clip of an endpoint for an input (only its duration and resolution matter;
 * the prompt may be left out), from the record's price rule. Pure. Throws
 * `UnknownEndpointError` for an unknown id and an InputValidationError for a duration or
 * resolution the endpoint does not render.
 */
export function priceOf(
  endpointId: string,
  input: { duration?: unknown; resolution?: unknown },
  options: PriceOptions = {},
): EndpointPrice {
  const record = endpointOf(endpointId);
  const params = effectiveParams(record, {
    duration: readEnum(record, "duration", input.duration),
    resolution: readEnum(record, "resolution", input.resolution),
  });
  const seconds = Number(params.duration);
  const rule = record.price;
  const base = rule.unit === "second" ? rule.usdPerSecond : rule.usdPerVideo;
  const unitPriceUsd = options.unitPriceUsd ?? base;
  const listed =
    rule.unit === "second"
      ? (rule.byResolution?.[params.resolution] ?? base)
      : (rule.byDuration?.[params.duration] ?? base);
  // The base tier at the account's price exactly (no ratio), so the seed's cost is the
  // seconds × price it has always been.
  const rate = listed === base ? unitPriceUsd : (listed * unitPriceUsd) / base;
  const usd = micro(rule.unit === "second" ? seconds * rate : rate);
  return { seconds, usd, unit: rule.unit, unitPriceUsd };
}
