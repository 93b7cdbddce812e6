import { createHash, randomBytes } from "node:crypto";
import { open, readFile, readdir, rename, rm, unlink, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";

/** Makes a rename durable: the directory entry itself must reach the disk. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r").catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic there.
  } finally {
    await handle.close();
  }
}

/**
 * Writes a whole file or nothing, durably: a temp file beside it (pid + random, so two writers
 * never share one), fsynced, renamed over the target, and the folder fsynced.
 */
export async function atomicWrite(path: string, content: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const file = await open(tmp, "w");
  try {
    await file.writeFile(content);
    await file.sync();
    await file.close();
    await rename(tmp, path);
  } catch (error) {
    await file.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw error;
  }
  await syncDir(dirname(path));
}

/**
 * An append-only JSON-lines file: one record a line, each on disk (fdatasync) before `append`
 * resolves. Lines appended while a write is under way go out together in the next write and share
 * its one fdatasync (group commit: a burst of records waits for one sync, not one each), in the
 * order they were appended and never interleaved. A last line torn by a crash or a full disk is
 * closed with a newline first, so no later record is lost.
 */
export class JsonlFile {
  private queued: { line: string; resolve: () => void; reject: (error: unknown) => void }[] = [];
  private flushing: Promise<void> | undefined;
  private torn = false;
  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
  ) {}

  /** Opens (creating if needed) for appending. */
  static async open(path: string): Promise<JsonlFile> {
    const handle = await open(path, "a+");
    const { size } = await handle.stat();
    const file = new JsonlFile(handle, path);
    if (size > 0) {
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      file.torn = last[0] !== 0x0a;
    }
    return file;
  }

  /** Appends one line (already serialised, no newline) and waits until it is durable. */
  appendLine(line: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ line, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  private async flush(): Promise<void> {
    while (this.queued.length) {
      const batch = this.queued.splice(0);
      try {
        await this.write(batch.map((b) => b.line));
        for (const b of batch) b.resolve();
      } catch (error) {
        // None of the batch is known durable: every one of its appends fails.
        for (const b of batch) b.reject(error);
      }
    }
    this.flushing = undefined;
  }

  private async write(lines: string[]): Promise<void> {
    const buf = Buffer.from(`${this.torn ? "\n" : ""}${lines.join("\n")}\n`);
    this.torn = true;
    for (let off = 0; off < buf.length;)
      off += (await this.handle.write(buf, off, buf.length - off)).bytesWritten;
    await this.handle.datasync();
    this.torn = false;
  }

  /** Closes the file; every appended line is already durable. */
  async close(): Promise<void> {
    await this.flushing;
    await this.handle.close();
  }
}

/** A line of a JSON-lines file that holds no record. */
export interface BadLine {
  /** 1-based line number. */
  line: number;
  /**
   * `torn`: cut short (a crash or a full disk mid-write; its append never resolved, so nothing
   * acted on it). `damaged`: anything else that is not a record (an edit, bit rot, a bad copy).
   */
  kind: "torn" | "damaged";
  /** The line's start, for messages. */
  excerpt: string;
}

/** What reading a JSON-lines file found besides its records. */
export interface JsonlRead<T> {
  records: T[];
  /** Lines cut short by a crash (counted in `bad` too). */
  tornLines: number;
  /** Every line that holds no record, in file order. */
  bad: BadLine[];
  /** Lines identical to an earlier line, skipped: a record stored twice counts once. */
  duplicateLines: number;
}

/** Reads one line: a record (a JSON object), or why not. */
function parseLine<T>(line: string): { record: T } | { bad: BadLine["kind"] } {
  try {
    const value: unknown = JSON.parse(line);
    return value && typeof value === "object" && !Array.isArray(value)
      ? { record: value as T }
      : { bad: "damaged" };
  } catch (error) {
    // A write cut short leaves a prefix of one object: JSON that fails only where the line ends
    // (V8 names the position), or inside a string that runs to the end.
    const message = (error as Error).message;
    const at = Number(/at position (\d+)/.exec(message)?.[1] ?? -1);
    const early = at >= line.length || /end of JSON input|Unterminated string/.test(message);
    return { bad: line.startsWith("{") && early ? "torn" : "damaged" };
  }
}

/**
 * Every record of a JSON-lines file; a missing file is empty. Lines that hold no record are
 * skipped and named (`bad`). With `dedupe`, a line identical to an earlier one is read once: for
 * files whose records carry their time to the millisecond (a journal), two equal lines are one
 * record stored twice.
 */
export async function readJsonl<T>(
  path: string,
  options: { dedupe?: boolean } = {},
): Promise<JsonlRead<T>> {
  const text = await readFile(path, "utf8").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return "";
    throw e;
  });
  return parseJsonl<T>(text.split("\n"), options);
}

/** What `readJsonl` makes of a file's lines, for lines kept elsewhere (a Redis stream). */
export function parseJsonl<T>(
  lines: readonly string[],
  options: { dedupe?: boolean } = {},
): JsonlRead<T> {
  const read: JsonlRead<T> = { records: [], tornLines: 0, bad: [], duplicateLines: 0 };
  const seen = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.trim()) continue;
    if (options.dedupe) {
      if (seen.has(line)) {
        read.duplicateLines++;
        continue;
      }
      seen.add(line);
    }
    const parsed = parseLine<T>(line);
    if ("record" in parsed) read.records.push(parsed.record);
    else {
      read.bad.push({ line: i + 1, kind: parsed.bad, excerpt: line.slice(0, 120) });
      if (parsed.bad === "torn") read.tornLines++;
    }
  }
  return read;
}

/**
 * Reads the whole lines appended to a JSON-lines file since byte `offset` (a line still being
 * written is left for the next call): a reader that keeps up costs what was appended, not the file.
 * `seen` (kept by the caller across calls: a digest of each line, not the line) skips lines read
 * before, as `readJsonl` with `dedupe` does.
 */
export async function readJsonlFrom<T>(
  path: string,
  offset: number,
  seen?: Set<string>,
): Promise<{ records: T[]; offset: number }> {
  const handle = await open(path, "r").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return undefined;
    throw e;
  });
  if (!handle) return { records: [], offset };
  try {
    const size = (await handle.stat()).size;
    if (size <= offset) return { records: [], offset };
    const buf = Buffer.alloc(size - offset);
    await handle.read(buf, 0, buf.length, offset);
    const end = buf.lastIndexOf(0x0a) + 1;
    const lines = buf.subarray(0, end).toString("utf8").split("\n");
    return { records: parseNewLines<T>(lines, seen), offset: offset + end };
  } finally {
    await handle.close();
  }
}

/**
 * The records of lines read after earlier ones: `seen` (kept by the caller across calls: a digest
 * of each line, not the line) skips lines read before; lines that hold no record are skipped, as
 * `readJsonl` does (which also names them).
 */
export function parseNewLines<T>(lines: readonly string[], seen?: Set<string>): T[] {
  const records: T[] = [];
  for (const line of lines) {
    if (!line.trim()) continue;
    if (seen) {
      const digest = createHash("sha1").update(line).digest("base64");
      if (seen.has(digest)) continue;
      seen.add(digest);
    }
    const parsed = parseLine<T>(line);
    if ("record" in parsed) records.push(parsed.record);
  }
  return records;
}

/** Whether process `pid` is running (a process we may not signal is running too). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes the entries of `dir` whose names carry the pid of a process that is gone (`pidOf`
 * reads it from a name): one killed outright could not remove its own scratch.
 */
export async function removeDeadPidDirs(
  dir: string,
  pidOf: (name: string) => number | undefined,
): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const pid = pidOf(name);
    if (pid && pid !== process.pid && !processAlive(pid))
      await rm(join(dir, name), { recursive: true, force: true }).catch(() => {});
  }
}
