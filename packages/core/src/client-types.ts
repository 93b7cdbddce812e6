import type {
  ClipDuration,
  ClipResolution,
  HailuoInputLike,
  HailuoOutput,
} from "@hailuo/endpoints";
import type { ErrorContext } from "./hailuo-errors.js";
import type { PlatformClient } from "./platform-api.js";

/**
 * An input for any endpoint of the family: `endpoint` names its record (the seed when left out,
 * so every seed input is unchanged); the rest is checked against that record before sending.
 */
export interface EndpointInputLike {
  /** An endpoint id of `ENDPOINTS`. @default HAILUO_ENDPOINT (the seed) */
  endpoint?: string;
  prompt: string;
  /** @default "6" where the endpoint takes a duration */
  duration?: ClipDuration | 6 | 10;
  /** Hailuo 02 standard image-to-video only. @default "768P" */
  resolution?: ClipResolution | Lowercase<ClipResolution>;
  /** The first frame: a URL from `uploadFile`, another https URL, or a data: URI. */
  image_url?: string;
  /** The last frame (Hailuo 02 image-to-video only). */
  end_image_url?: string;
  /** @default true */
  prompt_optimizer?: boolean;
}

/** A file uploaded to fal's storage. */
export interface UploadedFile {
  /** Where fal's models read it (pass it as `image_url`). */
  url: string;
  bytes: number;
  /** The content's hash: the same bytes are the same image, whatever the URL. */
  sha256: string;
  contentType: string;
}

/** A submitted request, small and JSON-serialisable so it can be journaled before waiting. */
export interface HailuoHandle {
  endpoint: string;
  requestId: string;
  /** ISO time the submit was answered. */
  submittedAt: string;
}

/** One log line from the model's runner. */
export interface HailuoLog {
  message: string;
  level?: string;
  timestamp?: string;
}

/** A queue status in our own words; fal's `COMPLETED` with `error` keeps the error here. */
export interface HailuoStatus {
  state: "queued" | "in_progress" | "completed";
  requestId: string;
  queuePosition?: number;
  logs: HailuoLog[];
  /** Set when the request finished without a video. */
  error?: string;
  errorType?: string;
  inferenceTimeS?: number;
}

/** An HTTP attempt beyond the first that the fal client made on its own. */
export interface HttpRetryInfo {
  operation: ErrorContext["operation"];
  attempt: number;
  requestId?: string;
  status?: number;
}

/** Options of `createHailuoClient`. */
export interface HailuoClientOptions {
  /** fal key; @default process.env.FAL_KEY (or FAL_KEY_ID:FAL_KEY_SECRET); with an emulator, FAL_EMULATOR_KEY or a placeholder */
  credentials?: string;
  /** Base URL of a fal emulator; every fal host is redirected there. @default process.env.FAL_EMULATOR_URL */
  emulatorUrl?: string;
  /**
   * How requests reach the emulator: `host` rewrites URLs to `<emu>/__host/<host>/…`,
   * `proxy` uses the client's `proxyUrl` with `x-fal-target-url`. @default "host"
   */
  emulatorRouting?: "host" | "proxy";
  /** Transport, for tests or custom agents. @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
  /**
   * Called for every HTTP attempt the fal client retries by itself (submit, status and result
   * retry 429/5xx/network errors inside the client), so retries are visible, never silent.
   */
  onHttpRetry?: (info: HttpRetryInfo) => void;
  /** Resends of a submit that provably never queued (429, connection refused, DNS). @default 3 */
  submitRetries?: number;
  /** Backoff base of those resends; Retry-After (capped at 60 s) is a floor. @default 1000 */
  submitRetryBaseDelayMs?: number;
}

/** Options of `wait`. */
export interface WaitOptions {
  signal?: AbortSignal;
  /** Called on every status change (stream event or poll). */
  onUpdate?: (status: HailuoStatus) => void;
  /** Gives up after this long (the request keeps running on fal). */
  timeoutMs?: number;
  /** `stream` uses fal's SSE status stream (one connection per clip) and falls back to polling. @default "stream" */
  mode?: "stream" | "poll";
  /** First poll interval when polling; it grows ×1.25 up to `maxPollIntervalMs`. @default 1000 */
  pollIntervalMs?: number;
  /** @default 2000 */
  maxPollIntervalMs?: number;
}

/** The Hailuo endpoint as a small typed API; see `createHailuoClient`. */
export interface HailuoClient {
  /** True when requests go to an emulator rather than fal. */
  readonly usingEmulator: boolean;
  /** fal's Platform APIs (pricing, requests by endpoint) with the same key and transport. */
  readonly platform: PlatformClient;
  /**
   * Validates against the endpoint's record (the input's `endpoint`, by default the seed), then
   * queues one generation. Journal the handle before waiting on it.
   */
  submit(
    input: HailuoInputLike | EndpointInputLike,
    options?: {
      signal?: AbortSignal;
      webhookUrl?: string;
      /**
       * Awaited before each re-send of a submit that provably never queued (a 429): a rejection
       * stops the submit there. A run checks it still owns the run, so a process that lost it
       * (paused through a Retry-After, say) never sends what the next owner sends too.
       */
      beforeResend?: () => Promise<void>;
    },
  ): Promise<HailuoHandle>;
  /** One status look-up (with logs when asked). */
  status(
    handle: HailuoHandle,
    options?: { signal?: AbortSignal; logs?: boolean },
  ): Promise<HailuoStatus>;
  /** Waits for COMPLETED (success or error) and returns that final status. */
  wait(handle: HailuoHandle, options?: WaitOptions): Promise<HailuoStatus>;
  /** Fetches the output of a completed request. */
  result(handle: HailuoHandle, options?: { signal?: AbortSignal }): Promise<HailuoOutput>;
  /** Asks fal to cancel; says what fal answered. */
  cancel(
    handle: HailuoHandle,
    options?: { signal?: AbortSignal },
  ): Promise<"cancellation_requested" | "already_completed" | "not_found">;
  /**
   * Uploads bytes to fal's storage (`fal.storage.upload`); the URL it answers is what models
   * read. Costs nothing; see `uploadFile` for files and content types.
   */
  upload(file: Blob, options?: { signal?: AbortSignal }): Promise<string>;
  /** Submit, wait and fetch in one call; a finished-with-error request throws a typed error. */
  generate(
    input: HailuoInputLike | EndpointInputLike,
    options?: WaitOptions & {
      onEnqueue?: (handle: HailuoHandle) => void | Promise<void>;
      webhookUrl?: string;
    },
  ): Promise<{ handle: HailuoHandle; status: HailuoStatus; output: HailuoOutput }>;
}
