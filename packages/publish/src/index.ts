export { runMediaStage, makeThumbnails, assembleFilm, type MediaStageOptions, type MediaStageResult } from "./media-stage.js";
export { renderRunPage, type PageMedia } from "./run-page.js";
export { html, raw, escapeHtml, RawHtml } from "./html.js";
