import { InputValidationError, type FieldProblem } from "@hailuo/shared";

/** The fal endpoint this package wraps. */
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

// Zero-width and other format characters, and every kind of space: a prompt of only these is empty.
const INVISIBLE = /[\p{Cf}\p{Z}\s]/gu;
// Control characters other than tab and newlines never belong in a prompt (a NUL ends strings downstream).
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;

const KNOWN_KEYS = new Set(["prompt", "duration", "prompt_optimizer"]);

/** Lists every problem with an input, by field; empty when it is valid. */
export function checkHailuoInput(input: unknown): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return [{ field: "", message: "expected an object with a prompt" }];
  }
  const rec = input as Record<string, unknown>;
  for (const key of Object.keys(rec)) {
    if (!KNOWN_KEYS.has(key))
      problems.push({
        field: key,
        message: `unknown field (expected one of ${[...KNOWN_KEYS].join(", ")})`,
      });
  }
  const { prompt, duration, prompt_optimizer } = rec;
  if (typeof prompt !== "string")
    problems.push({ field: "prompt", message: "is required and must be a string" });
  else if (prompt.trim() === "") problems.push({ field: "prompt", message: "must not be empty" });
  else if (prompt.replace(INVISIBLE, "") === "")
    problems.push({
      field: "prompt",
      message: "must not be empty (it holds only invisible characters)",
    });
  else if (CONTROL.test(prompt)) {
    const at = prompt.search(CONTROL);
    problems.push({
      field: "prompt",
      message: `holds a control character (U+${prompt.charCodeAt(at).toString(16).toUpperCase().padStart(4, "0")} at character ${at + 1}); remove it`,
    });
  } else if ([...prompt].length > MAX_PROMPT_CHARS) {
    problems.push({
      field: "prompt",
      message: `is ${[...prompt].length} characters; at most ${MAX_PROMPT_CHARS} are allowed`,
    });
  }
  if (duration !== undefined && !DURATIONS.includes(String(duration).trim() as HailuoDuration)) {
    problems.push({
      field: "duration",
      message: `must be "6" or "10" (seconds), got ${JSON.stringify(duration)}`,
    });
  }
  if (prompt_optimizer !== undefined && typeof prompt_optimizer !== "boolean") {
    problems.push({
      field: "prompt_optimizer",
      message: `must be true or false, got ${JSON.stringify(prompt_optimizer)}`,
    });
  }
  return problems;
}

/**
 * Validates and normalises an input (numbers → "6"/"10", defaults filled in).
 * Throws an InputValidationError listing every problem; nothing invalid reaches the network.
 */
export function normalizeHailuoInput(input: HailuoInputLike | unknown): HailuoInput {
  const problems = checkHailuoInput(input);
  if (problems.length > 0) throw new InputValidationError(problems);
  const rec = input as HailuoInputLike;
  return {
    prompt: rec.prompt,
    duration: (rec.duration === undefined ? "6" : String(rec.duration).trim()) as HailuoDuration,
    prompt_optimizer: rec.prompt_optimizer ?? true,
  };
}
