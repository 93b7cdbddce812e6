import { mkdir, open, readFile, readdir, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import lockfile from "proper-lockfile";
import { HailuoError, JsonlFile, atomicWrite } from "@hailuo/shared";
import type { ArtifactInfo, LogRead, Ownership, RunDocument, RunStore } from "./run-store.js";

/** Another live process owns the run. */
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

/** The journal's file name in a run folder. */
export const JOURNAL_FILE = "journal.jsonl";

/**
 * A run as a folder: `journal.jsonl` (fsynced JSON lines), `run.json`, `picks.json`, artifacts
 * as files, ownership as `run.lock`. Today's layout and guarantees, behind the store's interface.
 */
export function createLocalStore(runDir: string): RunStore {
  const journal = join(runDir, JOURNAL_FILE);
  const pathOf = (name: string) => join(runDir, ...name.split("/"));
  const infoOf = async (name: string): Promise<ArtifactInfo | undefined> => {
    const st = await stat(pathOf(name)).catch(() => undefined);
    return st?.isFile() ? { name, bytes: st.size, modifiedMs: st.mtimeMs } : undefined;
  };
  return {
    kind: "local",
    url: runDir,
    dir: runDir,
    openLog: () => JsonlFile.open(journal),
    readLog: (cursor) => readLinesFrom(journal, Number(cursor ?? 0), cursor === undefined),
    readDocument: (name: RunDocument) =>
      readFile(join(runDir, name), "utf8").catch((e: NodeJS.ErrnoException) => {
        if (e.code === "ENOENT") return undefined;
        throw e;
      }),
    writeDocument: (name, text) => atomicWrite(join(runDir, name), text),
    async putArtifact(name) {
      const info = await infoOf(name);
      if (!info)
        throw new HailuoError("unwritable", `${pathOf(name)} is not there to keep`, {
          retryable: false,
        });
      return info;
    },
    async getArtifact(name) {
      return (await infoOf(name)) !== undefined;
    },
    statArtifact: infoOf,
    async listArtifacts(prefix) {
      const base = pathOf(prefix.replace(/\/?[^/]*$/, ""));
      const entries = await readdir(base, { recursive: true, withFileTypes: true }).catch(() => []);
      const out: ArtifactInfo[] = [];
      for (const e of entries) {
        if (!e.isFile()) continue;
        const name = relative(runDir, join(e.parentPath, e.name)).split(sep).join("/");
        if (!name.startsWith(prefix)) continue;
        const info = await infoOf(name);
        if (info) out.push(info);
      }
      return out.sort((a, b) => a.name.localeCompare(b.name));
    },
    async acquire(options = {}): Promise<Ownership> {
      let lost: Error | undefined;
      const release = await acquireRunLock(runDir, {
        noWait: options.noWait,
        onCompromised: (error) => {
          lost ??= error;
          if (options.onLost) options.onLost(error);
          else process.emitWarning(`run.lock of ${runDir} was compromised: ${error.message}`);
        },
      });
      // A folder has one owner at a time and no writer checks tokens: every owner is "1".
      return {
        token: 1,
        release,
        async confirm() {
          if (lost) throw new RunLockedError(`run.lock of ${runDir} was lost: ${lost.message}`);
        },
      };
    },
    owned: () => runLockHeld(runDir),
    async close() {},
  };
}

/**
 * The whole lines appended to a file since byte `offset` (a line still being written is left for
 * the next read; `all` includes it, as a whole-file read does); a missing file is empty.
 */
async function readLinesFrom(path: string, offset: number, all: boolean): Promise<LogRead> {
  const handle = await open(path, "r").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return undefined;
    throw e;
  });
  if (!handle) return { lines: [], cursor: String(offset) };
  try {
    const size = (await handle.stat()).size;
    if (size <= offset) return { lines: [], cursor: String(offset) };
    const buf = Buffer.alloc(size - offset);
    await handle.read(buf, 0, buf.length, offset);
    const end = buf.lastIndexOf(0x0a) + 1;
    const text = buf.subarray(0, all ? buf.length : end).toString("utf8");
    const lines = text.split("\n").filter((l) => l.trim());
    return { lines, cursor: String(offset + end) };
  } finally {
    await handle.close();
  }
}
