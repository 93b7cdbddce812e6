import { HailuoError, InputValidationError, redactSecrets, type ErrorCode } from "@hailuo/shared";

/** Exit codes of every command: the one place they are decided. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** A usage mistake on the command line (exit 2). */
export class UsageError extends HailuoError {
  constructor(message: string) {
    super("usage", message, { retryable: false });
  }
}

// Refusals that come before any money is spent: the user must change something (exit 2).
const REFUSED_BEFORE_SPENDING: ReadonlySet<ErrorCode> = new Set(["usage", "validation", "manifest", "config", "preflight", "wrong_backend", "locked", "budget", "not_a_run"]);

/** Maps an error to its exit code. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof InputValidationError || (error instanceof HailuoError && REFUSED_BEFORE_SPENDING.has(error.code))) return EXIT.usage;
  if (error instanceof HailuoError && error.code === "cancelled") return EXIT.interrupted;
  return EXIT.failed;
}

/** Prints one clear message (the stack only with --debug), never a secret. */
export function reportError(error: unknown, debug: boolean): void {
  const text = error instanceof Error ? (debug ? (error.stack ?? error.message) : error.message) : String(error);
  const code = error instanceof HailuoError ? ` [${error.code}]` : "";
  process.stderr.write(`hailuo: error${code}: ${redactSecrets(text)}\n`);
  if (debug && error instanceof Error && error.cause) process.stderr.write(`caused by: ${redactSecrets(String((error.cause as Error).stack ?? error.cause))}\n`);
}
