export { ensureFfmpeg, FfmpegMissingError, FfmpegError, MIN_FFMPEG_MAJOR } from "./ffmpeg-env.js";
export { probe, NotAVideoError, type VideoInfo } from "./probe.js";
