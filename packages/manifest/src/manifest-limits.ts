/** Largest manifest we read: far above any real storyboard, far below a memory problem. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;
/** Most scenes × takes in one manifest. */
export const MAX_ITEMS = 5000;
/** Most takes of one scene. */
export const MAX_TAKES = 20;
/** Transitions ffmpeg's xfade offers (plus `cut` for none). */
export const TRANSITIONS = [
  "cut", "fade", "dissolve", "fadeblack", "fadewhite", "wipeleft", "wiperight", "wipeup", "wipedown",
  "slideleft", "slideright", "slideup", "slidedown", "smoothleft", "smoothright", "smoothup", "smoothdown",
  "circleopen", "circleclose", "circlecrop", "rectcrop", "radial", "pixelize", "distance", "hblur",
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
}
