import { mkdir, readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import lockfile from "proper-lockfile";
import { atomicWrite } from "@hailuo/shared";

/** Who holds a job's run lock: for messages only (the lock directory itself is the guard). */
export interface RunLockOwner {
  pid: number;
  host: string;
  /** The fire time (ISO) of the run it holds the lock for. */
  fireAt: string;
  runDir: string;
}

/** Options of `tryJobRunLock`. */
export interface JobRunLockOptions {
  /**
   * A lock not refreshed for this long belongs to a dead holder (crash, SIGKILL, a machine gone)
   * and is taken over; the holder refreshes it every third of that. @default 30000
   */
  staleMs?: number;
  /** Called when the lock was lost while held (it could not be refreshed in time). */
  onCompromised: (error: Error) => void;
}

function paths(outputRoot: string, job: string): { dir: string; lock: string; owner: string } {
  const dir = join(outputRoot, ".locks");
  return { dir, lock: join(dir, `${job}.run.lock`), owner: join(dir, `${job}.run.owner.json`) };
}

/**
 * Tries, without waiting, to take the lock that lets one run of a job go at a time, across
 * processes and machines sharing the job's output folder: proper-lockfile's atomic mkdir,
 * refreshed while held. Held by someone else: `heldBy` names them when their owner file says.
 */
export async function tryJobRunLock(
  outputRoot: string,
  job: string,
  owner: Omit<RunLockOwner, "pid" | "host">,
  options: JobRunLockOptions,
): Promise<{ release: () => Promise<void> } | { heldBy: RunLockOwner | undefined }> {
  const p = paths(outputRoot, job);
  await mkdir(p.dir, { recursive: true });
  const staleMs = options.staleMs ?? 30_000;
  const release = await lockfile
    // proper-lockfile keys its held locks by the first argument: one name per lock, not the folder.
    .lock(join(p.dir, `${job}.run`), {
      lockfilePath: p.lock,
      realpath: false,
      stale: staleMs,
      update: Math.max(1000, Math.floor(staleMs / 3)),
      onCompromised: options.onCompromised,
    })
    .catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ELOCKED") return undefined;
      throw error;
    });
  if (!release) return { heldBy: await readOwner(p.owner) };
  const me: RunLockOwner = { pid: process.pid, host: hostname(), ...owner };
  await atomicWrite(p.owner, `${JSON.stringify(me)}\n`);
  return { release: () => release().catch(() => {}) };
}

async function readOwner(file: string): Promise<RunLockOwner | undefined> {
  const text = await readFile(file, "utf8").catch(() => undefined);
  try {
    return text ? (JSON.parse(text) as RunLockOwner) : undefined;
  } catch {
    return undefined;
  }
}

/** "pid 123 on box, fired 2026-…": who holds the run lock, for a skip record. */
export function describeOwner(owner: RunLockOwner | undefined): string {
  if (!owner) return "pid unknown";
  return `pid ${owner.pid}${owner.host === hostname() ? "" : ` on ${owner.host}`}, fired ${owner.fireAt}`;
}
