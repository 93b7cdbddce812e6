/** Largest manifest we read by default (HAILUO_MAX_MANIFEST_BYTES or `limits.maxBytes` to change): a 100,000-row CSV fits. */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
/** Most scenes × takes in one manifest by default (HAILUO_MAX_ITEMS or `limits.maxItems` to change). */
export const MAX_ITEMS = 100_000;

/** Limits a manifest is held to. */
export interface ManifestLimits {
  maxBytes: number;
  maxItems: number;
}

/** The limits in force: the caller's, else the environment's, else the defaults. */
export function manifestLimits(given: Partial<ManifestLimits> = {}): ManifestLimits {
  const env = (name: string) => {
    const v = Number(process.env[name]);
    return Number.isFinite(v) && v > 0 ? v : undefined;
  };
  return {
    maxBytes: given.maxBytes ?? env("HAILUO_MAX_MANIFEST_BYTES") ?? MAX_MANIFEST_BYTES,
    maxItems: given.maxItems ?? env("HAILUO_MAX_ITEMS") ?? MAX_ITEMS,
  };
}
/** Most takes of one scene. */
export const MAX_TAKES = 20;
/** Transitions ffmpeg's xfade offers (plus `cut` for none). */
export const TRANSITIONS = [
  "cut",
  "fade",
  "dissolve",
  "fadeblack",
  "fadewhite",
  "wipeleft",
  "wiperight",
  "wipeup",
  "wipedown",
  "slideleft",
  "slideright",
  "slideup",
  "slidedown",
  "smoothleft",
  "smoothright",
  "smoothup",
  "smoothdown",
  "circleopen",
  "circleclose",
  "circlecrop",
  "rectcrop",
  "radial",
  "pixelize",
  "distance",
  "hblur",
] as const;

/** Options of `parseManifest`. */
export interface ParseOptions {
  /** Shown in errors and used for the default name. @default "<inline>" */
  file?: string;
  /** @default from the file extension, else yaml */
  format?: "yaml" | "csv" | "jsonl";
  /** The run's time, for `{{date}}` and friends. @default new Date() */
  now?: Date;
  /** Time zone of `{{date}}` and friends. @default the process's */
  timeZone?: string;
  /** Extra variables (job variables); manifest `vars` override run variables, these override both. */
  vars?: Record<string, string>;
  /** @default manifestLimits() */
  limits?: Partial<ManifestLimits>;
}
