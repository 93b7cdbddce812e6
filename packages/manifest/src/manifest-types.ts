import type { ClipResolution, HailuoDuration } from "@hailuo/endpoints";
import type { FieldProblem } from "@hailuo/shared";

/** Where a value came from, for error messages. */
export interface SourceRef {
  file: string;
  line?: number;
  column?: number;
}

/** A transition between two scenes of the film. */
export interface TransitionSpec {
  /** An ffmpeg xfade transition name, or `cut` for none. */
  type: string;
  /** Seconds of overlap. */
  durationS: number;
}

/** A title or end card. */
export interface CardSpec {
  text: string;
  durationS: number;
  /** Background colour, `#rrggbb` or an ffmpeg colour name. @default "#101820" */
  color: string;
}

/** An audio bed under the whole film. */
export interface AudioSpec {
  /** Path, relative to the manifest's folder. */
  file: string;
  /** @default 1 */
  volume: number;
  /** @default 1 */
  fadeInS: number;
  /** @default 2 */
  fadeOutS: number;
  /** Where the file is named in the manifest, for errors. */
  source?: SourceRef;
}

/** The manifest's `assemble:` section: how the film is put together. */
export interface AssembleSpec {
  /** Default transition between scenes. @default cut */
  transition: TransitionSpec;
  title?: CardSpec;
  end?: CardSpec;
  audio?: AudioSpec;
  /** File name of the film inside the run folder. @default "film.mp4" */
  output: string;
  /** Put a card in place of a failed scene instead of skipping it. @default false */
  placeholders: boolean;
}

/** The manifest's `thumbnails:` section. */
export interface ThumbnailSpec {
  /** Seconds into each clip for its poster, or `auto` for a representative frame. @default "auto" */
  posterAt: number | "auto";
  /** Columns of the contact sheet (0 = no sheet). @default 4 */
  sheetColumns: number;
  /** Animated preview of each clip. @default "gif" */
  preview: "gif" | "webp" | "none";
}

/** An image file beside the manifest, read and checked against MiniMax's image rules. */
export interface FileImage {
  kind: "file";
  /** Absolute path of the file that was read (symlinks resolved, inside the manifest's folder). */
  path: string;
  /** Hex SHA-256 of its bytes: the image's identity in cache keys, whatever its name or URL. */
  sha256: string;
  bytes: number;
  /** From the file's magic bytes, never its extension. */
  format: "jpeg" | "png" | "webp";
  width: number;
  height: number;
}

/** An image given as an https URL: passed to fal as it is (nothing is fetched before the run). */
export interface UrlImage {
  kind: "url";
  url: string;
}

/**
 * An image file the manifest names but that has not been read yet: what `parseManifest` (pure)
 * gives; `loadManifest` and `readSceneImages` turn it into a `FileImage` or refuse it. A run
 * must never start from one (`takeRequest` throws).
 */
export interface UnreadImage {
  kind: "unread";
  /** As written, relative to the manifest's folder (checked not to leave it). */
  path: string;
  /** Where it is named, for errors. */
  source: SourceRef;
}

/** Where a scene's start or end frame comes from, as the manifest gives it. */
export type ImageSource = FileImage | UrlImage | UnreadImage;

/** One scene of a manifest, validated and templated. */
export interface Scene {
  /** Stable id; also the file-name stem of its clips. Safe: no separators, no `..`. */
  id: string;
  /** The prompt after templating. */
  prompt: string;
  duration: HailuoDuration;
  prompt_optimizer: boolean;
  /** Generations of this same scene. @default 1 */
  takes: number;
  tags: string[];
  /** Transition into the next scene, overriding the default. */
  transition?: TransitionSpec;
  /** The take the film uses (`pick:` in the manifest); a pick made in the run folder wins. */
  pick?: number;
  /** Takes added later to this scene in its run folder (`hailuo reroll`), each with the prompt it was made with. */
  rerolls?: Reroll[];
  /**
   * The fal endpoint (an id of `ENDPOINTS`), set only when the scene or the defaults use a field
   * of the family (`model`, `resolution`, `image`, `end_image`, `continue_from`): a seed scene
   * keeps exactly the shape it always had, and means the seed endpoint (`sceneEndpoint`).
   */
  endpoint?: string;
  /** What the endpoint renders (asked for, its default, or fixed); set with `endpoint`. */
  resolution?: ClipResolution;
  /** The first frame (`image:`). */
  image?: ImageSource;
  /** The last frame (`end_image:`, Hailuo 02 image-to-video only). */
  endImage?: ImageSource;
  /**
   * The scene whose chosen take's last frame is this scene's first frame (`continue_from:`,
   * `previous` resolved to an id). Never set together with `image`; never in a cycle.
   */
  continueFrom?: string;
  source: SourceRef;
}

/** One take added by `hailuo reroll`: recorded in run.json so the run stays explainable. */
export interface Reroll {
  take: number;
  /** The prompt of this take (the scene's own, or an edited one). */
  prompt: string;
  /** When it was asked for (ISO time). */
  at: string;
}

/** A validated manifest: everything a run needs, nothing unchecked. */
export interface Manifest {
  name: string;
  /** The file it came from (or `<inline>`). */
  file: string;
  format: "yaml" | "csv" | "jsonl";
  defaults: {
    duration: HailuoDuration;
    prompt_optimizer: boolean;
    takes: number;
    /** `defaults.model`, only when given. */
    model?: string;
    /** `defaults.resolution`, only when given. */
    resolution?: ClipResolution;
  };
  vars: Record<string, string>;
  scenes: Scene[];
  assemble?: AssembleSpec;
  thumbnails: ThumbnailSpec;
  /** Things that are allowed but likely slips (a CSV column or `--var` no prompt uses); never stored in run.json. */
  warnings?: FieldProblem[];
}
