import { mkdir } from "node:fs/promises";
import lockfile from "proper-lockfile";
import { HailuoError } from "@hailuo/shared";

/** Another live process is running into the same run folder. */
export class RunLockedError extends HailuoError {
  constructor(message: string) {
    super("locked", message, { retryable: false });
  }
}

// proper-lockfile refreshes the lock's mtime every `update` ms; a lock not refreshed for `stale`
// ms belongs to a dead process (crash, SIGKILL) and is taken over. A resume right after a crash
// waits those few seconds instead of failing; 2 s of slack covers a busy machine's late timers.
const STALE_MS = 3000;
const UPDATE_MS = 1000;

/** Options of `acquireRunLock`. */
export interface RunLockOptions {
  /** Called when the lock was lost while held (its refresh failed for longer than `stale`). */
  onCompromised?: (error: Error) => void;
  /** Give up at once when the lock is held rather than waiting for a crashed holder to go stale. */
  noWait?: boolean;
}

/**
 * Takes the run folder's `run.lock` (proper-lockfile: an atomic mkdir, refreshed while held, safe
 * on local and network file systems) so two processes never submit the same scenes.
 */
export async function acquireRunLock(
  runDir: string,
  options: RunLockOptions = {},
): Promise<() => Promise<void>> {
  const lockfilePath = `${runDir}/run.lock`;
  await mkdir(runDir, { recursive: true });
  try {
    const release = await lockfile.lock(runDir, {
      lockfilePath,
      realpath: false,
      stale: STALE_MS,
      update: UPDATE_MS,
      retries: options.noWait ? 0 : { retries: 12, factor: 1.5, minTimeout: 200, maxTimeout: 1000 },
      onCompromised:
        options.onCompromised ??
        ((error) => process.emitWarning(`run.lock of ${runDir} was compromised: ${error.message}`)),
    });
    return () => release().catch(() => {});
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ELOCKED") throw error;
    throw new RunLockedError(
      `${runDir} is in use by another hailuo process (run.lock is held and fresh); wait for it to finish or stop it first`,
    );
  }
}

/** True when a live process holds the run folder's lock (used by queue workers and enqueue). */
export async function runLockHeld(runDir: string): Promise<boolean> {
  return lockfile.check(runDir, {
    lockfilePath: `${runDir}/run.lock`,
    realpath: false,
    stale: STALE_MS,
  });
}
