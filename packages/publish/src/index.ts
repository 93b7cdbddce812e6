export {
  runMediaStage,
  makeThumbnails,
  assembleFilm,
  chaptersVtt,
  type MediaStageOptions,
  type MediaStageResult,
  type FilmFile,
} from "./media-stage.js";
export { renderRunPage, type PageMedia } from "./run-page.js";
export { html, raw, escapeHtml, RawHtml } from "./html.js";
