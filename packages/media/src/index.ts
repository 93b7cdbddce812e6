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
  transitionsAfter,
  filmFrame,
  inFilmFormat,
  filmSequence,
  planFilmParts,
  type PendingClip,
  type SegmentCache,
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
export {
  planFilm,
  pieceRuns,
  readsPending,
  PIECE_FORMAT,
  type FilmPart,
  type FilmPiece,
  type FilmPlan,
  type FilmPlanInput,
  type PieceRead,
} from "./film-plan.js";
export {
  makeFilm,
  makePieces,
  joinPieces,
  removeStalePieces,
  piecePath,
  pieceRunArgs,
  fileSha256,
  type MadeFilm,
  type PieceOptions,
  type PieceAudio,
} from "./film-pieces.js";
export {
  extractLastFrame,
  LastFrameError,
  type LastFrame,
  type LastFrameOptions,
} from "./last-frame.js";
