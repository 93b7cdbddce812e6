export {
  runMediaStage,
  makeThumbnails,
  assembleFilm,
  chaptersVtt,
  type MediaStageOptions,
  type MediaStageResult,
  type FilmFile,
} from "./media-stage.js";
export { createFilmBuilder, type FilmBuilder, type FilmBuilderOptions } from "./film-builder.js";
export { renderRunPage, type PageMedia } from "./run-page.js";
export {
  pageFacts,
  modelLabel,
  staleText,
  shellWord,
  resumeCommand,
  type PageFacts,
  type PageFactsOptions,
  type PageImage,
  type SceneFacts,
  type StaleTake,
} from "./scene-facts.js";
export { html, raw, escapeHtml, RawHtml } from "./html.js";
