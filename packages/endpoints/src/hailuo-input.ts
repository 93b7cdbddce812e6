import type { FieldProblem } from "@hailuo/shared";
import { checkRecordInput, normalizeInput } from "./endpoint-input.js";
import { SEED_ENDPOINT, SEED_ENDPOINT_ID } from "./endpoints.js";

/** The seed endpoint, what every caller gets when it names none. */
export const HAILUO_ENDPOINT = "fal-ai/minimax/hailuo-02/standard/text-to-video" as const;

/** Longest prompt MiniMax accepts (fal forwards it unchanged). */
export const MAX_PROMPT_CHARS = 2000;

/** Clip lengths the Standard tier renders at 768p. */
export const DURATIONS = ["6", "10"] as const;
/** A clip length in seconds, as fal's string enum. */
export type HailuoDuration = (typeof DURATIONS)[number];

/**
 * What callers may pass: the duration as fal's string or as a number, optional fields left out.
 * Only the lengths the endpoint renders type-check; untyped input goes through `normalizeHailuoInput`,
 * which checks at run time.
 */
export interface HailuoInputLike {
  prompt: string;
  /** @default "6" */
  duration?: HailuoDuration | 6 | 10;
  /** @default true */
  prompt_optimizer?: boolean;
}

/** The exact body sent to fal: every field present, duration as the string enum. */
export interface HailuoInput {
  prompt: string;
  duration: HailuoDuration;
  prompt_optimizer: boolean;
}

/** A file in fal's output. */
export interface FalFile {
  url: string;
  content_type?: string;
  file_name?: string;
  file_size?: number;
}

/** The endpoint's output. */
export interface HailuoOutput {
  video: FalFile;
}

/** Lists every problem with an input, by field; empty when it is valid (the seed's record). */
export function checkHailuoInput(input: unknown): FieldProblem[] {
  // The seed has always called resolution an unknown field: it keeps doing so.
  return checkRecordInput(SEED_ENDPOINT, input, { fixedFields: "refuse" });
}

/**
 * Validates and normalises an input (numbers → "6"/"10", defaults filled in).
 * Throws an InputValidationError listing every problem; nothing invalid reaches the network.
 */
export function normalizeHailuoInput(input: HailuoInputLike | unknown): HailuoInput {
  return normalizeInput(SEED_ENDPOINT_ID, input, { fixedFields: "refuse" }) as HailuoInput;
}
