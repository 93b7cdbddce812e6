// The endpoint's contract lives in @hailuo/endpoints; the core is its public face for library users.
export * from "@hailuo/endpoints";
export { livePrice, type LivePrice } from "./live-price.js";
export {
  createPlatformClient,
  PlatformUnavailableError,
  FAL_PLATFORM_URL,
  type PlatformClient,
  type PlatformClientOptions,
  type FalPrice,
  type FalRequestRecord,
} from "./platform-api.js";
export {
  ContentPolicyError,
  AuthError,
  RateLimitError,
  ServerError,
  NetworkError,
  SubmitAmbiguousError,
  GenerationFailedError,
  DownloadError,
  WebhookVerificationError,
  ConfigError,
  mapFalError,
  type ErrorContext,
} from "./hailuo-errors.js";
export { createHailuoClient, resultForStatus } from "./hailuo-client.js";
export { uploadFile, sniffContentType, type UploadFileOptions } from "./upload-file.js";
export { isSafeToResubmit } from "./fal-transport.js";
export type {
  HailuoClient,
  HailuoClientOptions,
  EndpointInputLike,
  UploadedFile,
  HailuoHandle,
  HailuoStatus,
  HailuoLog,
  HttpRetryInfo,
  WaitOptions,
} from "./client-types.js";
export { syncDir } from "@hailuo/shared";
export {
  downloadVideo,
  localWriteError,
  LocalWriteError,
  DownloadStalledError,
  DEFAULT_DOWNLOAD_IDLE_TIMEOUT_MS,
  type DownloadOptions,
  type DownloadResult,
} from "./download.js";
export {
  verifyFalWebhook,
  FAL_JWKS_URL,
  FAL_JWKS_URLS,
  type Jwks,
  type VerifyWebhookOptions,
  type VerifiedWebhook,
} from "./webhook.js";
export {
  HailuoError,
  InputValidationError,
  CancelledError,
  TimeoutError,
  isRetryable,
  type FieldProblem,
  type ErrorCode,
} from "@hailuo/shared";
