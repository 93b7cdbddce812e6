import { open, readFile, type FileHandle } from "node:fs/promises";
import { localWriteError, type HailuoHandle } from "@hailuo/core";
import { redactSecrets } from "@hailuo/shared";

/** A clip as verified on disk. */
export interface ClipFacts {
  /** Path relative to the run folder. */
  file: string;
  bytes: number;
  sha256: string;
  durationS: number;
  width: number;
  height: number;
}

/** Every state change of a run, one JSON object per line. */
export type JournalRecord =
  | { t: "run"; name: string; manifest: string; items: number; pid: number }
  | { t: "submitting"; key: string; scene: string; take: number; attempt: number; usd?: number }
  | { t: "submitted"; key: string; handle: HailuoHandle }
  /** The submit's answer was lost after it left: fal may have queued (and billed) it. */
  | { t: "ambiguous"; key: string; message: string; requestId?: string }
  /** A submit whose answer was lost, found on fal's Platform API (requests by endpoint) and re-attached. */
  | { t: "reconciled"; key: string; handle: HailuoHandle; twin?: boolean }
  /** fal refused the submit before queueing it (or it never left): nothing was created. */
  | { t: "refused"; key: string; code: string; message: string }
  /** The result was fetched: the request is billed and its URL is what a paid clip is saved from. */
  | { t: "completed"; key: string; requestId: string; videoUrl: string; fileSize?: number; seconds?: number; usd?: number }
  /** The request is over without a video (failed generation, validation, policy): nothing billed. */
  | { t: "ended"; key: string; requestId: string; code: string }
  /** A paid clip could not be saved; it stays "completed, not saved" and resume downloads it again. */
  | { t: "save_failed"; key: string; requestId: string; code: string; message: string }
  | ({ t: "done"; key: string; requestId: string } & ClipFacts)
  | { t: "retry"; key: string; attempt: number; code: string; message: string; delayMs: number; stage: string }
  | { t: "failed"; key: string; code: string; message: string; retryable: boolean; requestId?: string; live: boolean }
  | { t: "cancelled"; key: string; requestId: string; answer: string }
  | { t: "interrupted" }
  | { t: "enqueued"; items: number }
  | { t: "finished"; ok: number; failed: number };

/** A record as stored, with its time. */
export type StoredRecord = JournalRecord & { at: string };

/**
 * Append-only, fsynced journal: a record is on disk before the call returns, so a crash can
 * lose at most the record being written (a torn last line, which `readJournal` skips).
 */
export class JournalStore {
  private tail: Promise<void> = Promise.resolve();
  private torn = false;
  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
  ) {}

  /**
   * Opens (creating if needed) a journal for appending. A last line torn by a crash or a full
   * disk is closed with a newline first, so the next record starts on a line of its own.
   */
  static async open(path: string): Promise<JournalStore> {
    const handle = await open(path, "a+");
    const { size } = await handle.stat();
    if (size > 0) {
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) {
        await handle.write("\n");
        await handle.datasync();
      }
    }
    return new JournalStore(handle, path);
  }

  /** Appends a record and waits until it is durable. Secrets are scrubbed from every record. */
  append(record: JournalRecord): Promise<void> {
    const line = redactSecrets(JSON.stringify({ ...record, at: new Date().toISOString() }));
    // One append at a time, so a write the OS takes in pieces is never interleaved with another.
    const next = this.tail.then(() => this.write(line));
    this.tail = next.catch(() => {});
    return next;
  }

  private async write(line: string): Promise<void> {
    // After a failed append (full disk) the file may end in a fragment: start on a fresh line.
    const buf = Buffer.from(`${this.torn ? "\n" : ""}${line}\n`);
    this.torn = true;
    try {
      for (let off = 0; off < buf.length; ) off += (await this.handle.write(buf, off, buf.length - off)).bytesWritten;
      await this.handle.datasync();
    } catch (error) {
      throw localWriteError(this.path, error) ?? error;
    }
    this.torn = false;
  }

  /** Closes the file; every appended record is already durable. */
  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** Reads every complete record of a journal; a missing file is an empty journal. */
export async function readJournal(path: string): Promise<{ records: StoredRecord[]; tornLines: number }> {
  const text = await readFile(path, "utf8").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return "";
    throw e;
  });
  const records: StoredRecord[] = [];
  let tornLines = 0;
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      records.push(JSON.parse(line) as StoredRecord);
    } catch {
      // Only a crash mid-write produces this; the state it described was never acted on.
      tornLines++;
    }
  }
  return { records, tornLines };
}
