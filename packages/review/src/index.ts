// The review page of a run folder: a local web server (hono) showing takes live, with pick, re-roll and assemble.
export {
  startReviewServer,
  type ReviewActions,
  type ReviewServer,
  type ReviewServerOptions,
} from "./review-server.js";
export {
  reviewState,
  folderSignature,
  type ReviewState,
  type SceneView,
  type TakeView,
} from "./review-state.js";
export { reviewPage, FAVICON_SVG, type ReviewPageOptions } from "./review-page.js";
export { reviewParts, transitionText, type ReviewParts } from "./review-view.js";
export {
  filmChanges,
  describeChange,
  type FilmChange,
  type FilmSceneFacts,
} from "./film-status.js";
export { MAX_REROLL_TAKES, MAX_TAKE_NUMBER, ReviewInputError } from "./review-input.js";
export { watchFolder, type FolderWatch, type WatchFolder } from "./state-feed.js";
