import { HailuoError, InputValidationError, redactSecrets, type ErrorCode } from "@hailuo/shared";
import { emitJson } from "./events.js";

/** Exit codes of every command: the one place they are decided. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** A usage mistake on the command line (exit 2). */
export class UsageError extends HailuoError {
  constructor(message: string) {
    super("usage", message, { retryable: false });
  }
}

/**
 * Every error code with what it means to the person at the terminal and its exit code: 2 when
 * the command refused before spending anything (change something and run it again), 130 when
 * stopped by Ctrl-C, 1 otherwise. The README's table is generated from this (`pnpm docs`).
 */
export const ERROR_CODE_DOC: Record<ErrorCode, { exit: 1 | 2 | 130; means: string }> = {
  validation: { exit: 2, means: "fal (or our own check of its rules) refused the input" },
  content_policy: {
    exit: 1,
    means: "fal refused the prompt or the video for content policy; not retried for the same input",
  },
  auth: {
    exit: 1,
    means: "fal refused the key (401/403); the run stops, resumable once the key is fixed",
  },
  rate_limited: { exit: 1, means: "fal answered 429 after every retry" },
  server: { exit: 1, means: "fal answered 5xx after every retry" },
  network: { exit: 1, means: "a connection failed after every retry" },
  unreachable: {
    exit: 1,
    means:
      "fal could not be reached at all (DNS, refused); the run stops naming the host, resumable",
  },
  timeout: { exit: 1, means: "a clip took longer than --timeout-min; its request stays resumable" },
  cancelled: { exit: 130, means: "stopped by Ctrl-C or SIGTERM; resume carries on" },
  generation_failed: { exit: 1, means: "fal finished the request without a video (not billed)" },
  request_cancelled: { exit: 1, means: "the request was cancelled on fal (499)" },
  platform_unavailable: {
    exit: 1,
    means:
      "fal's Platform API (pricing, request lists) refused us; lost submits are flagged instead of looked up",
  },
  submit_ambiguous: {
    exit: 1,
    means:
      "a submit left this machine and its answer was lost; flagged as a possible double charge",
  },
  answers_lost: {
    exit: 1,
    means:
      "submits of one clip kept losing their answers and fal's request list could not explain them (each may be billed); the run stopped instead of paying on (--resend-lost N allows more)",
  },
  price_unknown: {
    exit: 2,
    means:
      "fal's pricing API could not confirm the account's price and a budget depends on it; nothing submitted (--price USD_PER_S, or --assume-list-price)",
  },
  not_found: { exit: 1, means: "fal does not know the request (404)" },
  http: { exit: 1, means: "fal answered an unexpected HTTP status" },
  config: { exit: 2, means: "the environment is wrong (e.g. FAL_EMULATOR_URL is not a URL)" },
  download: {
    exit: 1,
    means: "the paid clip could not be downloaded; resume downloads it again, never pays twice",
  },
  download_stalled: {
    exit: 1,
    means:
      "a clip download sent nothing for the idle timeout (HAILUO_DOWNLOAD_IDLE_S, 60 s); retried, then resume downloads it again, never pays twice",
  },
  clip_changed: {
    exit: 1,
    means:
      "a clip on disk no longer matches the journal (replaced, cut or rotted): the film is not made; hailuo resume downloads the paid clip again",
  },
  clip_unrecoverable: {
    exit: 1,
    means:
      "a paid clip adopted from disk is gone or changed and only its file name's request-id letters are known: it cannot be downloaded again and is not paid again (put it back, or edit the scene)",
  },
  disk_full: {
    exit: 1,
    means: "the disk filled up while saving; the clip stays paid-not-saved, resume downloads it",
  },
  unwritable: {
    exit: 1,
    means: "a folder could not be written (read-only, permissions); resumable",
  },
  verify: {
    exit: 1,
    means: "a downloaded clip failed its size or decode check; resume downloads it again",
  },
  webhook_invalid: { exit: 1, means: "a webhook's signature did not verify" },
  budget: { exit: 2, means: "the run would cost more than --budget; nothing submitted" },
  locked: { exit: 2, means: "another process (or a distributed run) holds the run folder" },
  wrong_backend: {
    exit: 2,
    means: "the run folder's requests went to another backend (--backend-override to insist)",
  },
  preflight: {
    exit: 2,
    means:
      "a check before spending failed (ffmpeg, writable folders, disk space, audio bed, variables)",
  },
  manifest: {
    exit: 2,
    means: "the manifest or job file has problems, each named with file:line:col",
  },
  usage: { exit: 2, means: "the command line is wrong (unknown flag, bad value, unknown job)" },
  not_a_run: { exit: 2, means: "the folder is not a run folder (no run.json)" },
  declined: { exit: 2, means: 'you answered no to "spend up to $X?"; nothing submitted' },
  unsafe_path: { exit: 2, means: "a path would escape the run folder; refused" },
  ffmpeg_missing: { exit: 2, means: "ffmpeg or ffprobe is not installed or not on PATH" },
  ffmpeg_failed: { exit: 1, means: "ffmpeg failed (its last lines of output are shown)" },
  not_video: { exit: 1, means: "a file is not a video ffprobe can read" },
  assemble_failed: { exit: 1, means: "the film could not be made" },
  thumbnail_failed: { exit: 1, means: "posters or the contact sheet could not be made" },
  redis: { exit: 2, means: "Redis cannot be reached at --redis; nothing enqueued or taken" },
  store: {
    exit: 1,
    means:
      "the run's bucket or its Redis refused or failed an operation (named in the message); retried first, and a paid clip that could not be stored stays paid and is uploaded on resume, never submitted again",
  },
  internal: { exit: 1, means: "a bug: please report it with --debug output" },
};

/** Maps an error to its exit code. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof InputValidationError) return EXIT.usage;
  if (error instanceof HailuoError) return ERROR_CODE_DOC[error.code]?.exit ?? EXIT.failed;
  return EXIT.failed;
}

/** Prints one clear message (the stack only with --debug), never a secret; with --json also an `error` event. */
export function reportError(error: unknown, debug: boolean, json = false): void {
  const text =
    error instanceof Error
      ? debug
        ? (error.stack ?? error.message)
        : error.message
      : String(error);
  const code = error instanceof HailuoError ? error.code : "internal";
  process.stderr.write(
    `hailuo: error${error instanceof HailuoError ? ` [${code}]` : ""}: ${redactSecrets(text)}\n`,
  );
  if (debug && error instanceof Error && error.cause)
    process.stderr.write(
      `caused by: ${redactSecrets(String((error.cause as Error).stack ?? error.cause))}\n`,
    );
  if (json)
    emitJson({
      type: "error",
      code,
      message: redactSecrets(error instanceof Error ? error.message : String(error)),
      exitCode: exitCodeFor(error),
    });
}

/** The README's table of error codes, exit codes and meanings (generated, and tested against it). */
export function errorCodeMarkdown(): string {
  const rows = Object.entries(ERROR_CODE_DOC).map(
    ([code, d]) => `| \`${code}\` | ${d.exit} | ${d.means.replaceAll("|", "\\|")} |`,
  );
  return ["| code | exit | meaning |", "|---|---|---|", ...rows].join("\n");
}
