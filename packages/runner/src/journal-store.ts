import { open, readFile, type FileHandle } from "node:fs/promises";
import type { HailuoHandle } from "@hailuo/core";
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
  | { t: "submitting"; key: string; scene: string; take: number; attempt: number }
  | { t: "submitted"; key: string; handle: HailuoHandle }
  | { t: "ambiguous"; key: string; message: string }
  | { t: "completed"; key: string; requestId: string; videoUrl: string; fileSize?: number }
  | ({ t: "done"; key: string; requestId: string } & ClipFacts)
  | { t: "retry"; key: string; attempt: number; code: string; message: string; delayMs: number; stage: string }
  | { t: "failed"; key: string; code: string; message: string; retryable: boolean; requestId?: string; live: boolean }
  | { t: "cancelled"; key: string; requestId: string; answer: string }
  | { t: "interrupted" }
  | { t: "finished"; ok: number; failed: number };

/** A record as stored, with its time. */
export type StoredRecord = JournalRecord & { at: string };

/**
 * Append-only, fsynced journal: a record is on disk before the call returns, so a crash can
 * lose at most the record being written (a torn last line, which `readJournal` skips).
 */
export class JournalStore {
  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
  ) {}

  /** Opens (creating if needed) a journal for appending. */
  static async open(path: string): Promise<JournalStore> {
    return new JournalStore(await open(path, "a"), path);
  }

  /** Appends a record and waits until it is durable. Secrets are scrubbed from every record. */
  async append(record: JournalRecord): Promise<void> {
    const line = redactSecrets(JSON.stringify({ ...record, at: new Date().toISOString() }));
    await this.handle.write(`${line}\n`);
    await this.handle.datasync();
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
