import { open, readFile, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { HailuoError } from "@hailuo/shared";

/** Another live process is running into the same run folder. */
export class RunLockedError extends HailuoError {
  constructor(message: string) {
    super("locked", message, { retryable: false });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Takes `run.lock` in a run folder so two processes never submit the same scenes. A lock left by
 * a dead process on this host (a crash, SIGKILL) is taken over.
 */
export async function acquireRunLock(path: string): Promise<() => Promise<void>> {
  for (let i = 0; i < 2; i++) {
    try {
      const handle = await open(path, "wx");
      await handle.writeFile(JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString() }));
      await handle.close();
      return () => unlink(path).catch(() => {});
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = JSON.parse(await readFile(path, "utf8").catch(() => "{}")) as { pid?: number; host?: string };
      if (owner.pid && (owner.host !== hostname() || alive(owner.pid))) {
        throw new RunLockedError(`${path} is held by process ${owner.pid} on ${owner.host}; another run is writing to this folder`);
      }
      await unlink(path).catch(() => {});
    }
  }
  throw new RunLockedError(`could not take ${path}`);
}
