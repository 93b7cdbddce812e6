import { HailuoError } from "@hailuo/shared";

/**
 * Most takes one re-roll from the page may ask for: the most one scene of a manifest may have
 * (the manifest's MAX_TAKES), so a typo cannot quote, or start, thousands of generations.
 */
export const MAX_REROLL_TAKES = 20;
/** Highest take number a pick may name; a real run is far below it. */
export const MAX_TAKE_NUMBER = 100_000;
/** Longest scene id or prompt a page request may carry. */
const MAX_TEXT = 10_000;

/** A field of a page request that is missing, of the wrong kind or out of range: a 400 naming it. */
export class ReviewInputError extends HailuoError {
  constructor(message: string) {
    super("usage", message, { retryable: false });
  }
}

const shown = (v: unknown) =>
  typeof v === "string" ? JSON.stringify(v.slice(0, 40)) : String(v).slice(0, 40);

/** A whole number in [min, max] given as a JSON number, else a `ReviewInputError` naming the field and range. */
export function wholeNumber(
  body: Record<string, unknown>,
  field: string,
  min: number,
  max: number,
  fallback?: number,
): number {
  const v = body[field] ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new ReviewInputError(
      `${field} must be a whole number from ${min} to ${max}, got ${v === undefined ? "nothing" : shown(v)}`,
    );
  }
  return v;
}

/** A non-empty string field (a scene id), else a `ReviewInputError`. */
export function text(body: Record<string, unknown>, field: string): string {
  const v = body[field];
  if (typeof v !== "string" || v === "" || v.length > MAX_TEXT)
    throw new ReviewInputError(
      `${field} must be a non-empty string of at most ${MAX_TEXT} characters, got ${v === undefined ? "nothing" : shown(v)}`,
    );
  return v;
}

/** An optional string field: absent, null or "" mean none. */
export function optionalText(body: Record<string, unknown>, field: string): string | undefined {
  const v = body[field];
  if (v === undefined || v === null || v === "") return undefined;
  return text(body, field);
}

/** What a re-roll or its quote asks for. */
export interface RerollRequest {
  scene: string;
  takes: number;
  prompt?: string;
}

/** Reads a re-roll request (quote or start): scene, takes (default 1, 1…MAX_REROLL_TAKES), prompt. */
export function rerollRequest(body: Record<string, unknown>): RerollRequest {
  const prompt = optionalText(body, "prompt");
  return {
    scene: text(body, "scene"),
    takes: wholeNumber(body, "takes", 1, MAX_REROLL_TAKES, 1),
    ...(prompt ? { prompt } : {}),
  };
}

/** Reads a pick request: scene and take (1…MAX_TAKE_NUMBER). */
export function pickRequest(body: Record<string, unknown>): { scene: string; take: number } {
  return { scene: text(body, "scene"), take: wholeNumber(body, "take", 1, MAX_TAKE_NUMBER) };
}
