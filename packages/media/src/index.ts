export {
  checkFfmpeg,
  ensureFfmpeg,
  FfmpegMissingError,
  FfmpegError,
  MIN_FFMPEG_MAJOR,
} from "./ffmpeg-env.js";
export { probe, NotAVideoError, type VideoInfo } from "./probe.js";
export {
  concatClips,
  canStreamCopy,
  X264_PRESETS,
  DEFAULT_X264_PRESET,
  xfadeOffsets,
  AssembleError,
  type ConcatOptions,
  type ConcatResult,
  type Transition,
  type Card,
  type AudioBed,
} from "./concat.js";
export {
  poster,
  contactSheet,
  animatedPreview,
  sheetSize,
  type PosterOptions,
  type SheetItem,
  type SheetOptions,
  type PreviewOptions,
} from "./thumbnails.js";
export type { MediaOptions, ProgressFn } from "./run-ffmpeg.js";
export { audioBedProblem } from "./audio-bed.js";
export { MediaIoError, mediaIoError } from "./media-work.js";
