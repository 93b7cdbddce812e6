import { localWriteError, type HailuoHandle } from "@hailuo/core";
import type { VideoInfo } from "@hailuo/media";
import { join } from "node:path";
import { JsonlFile, parseJsonl, readJsonl, redactSecrets } from "@hailuo/shared";
import type { RecordLog, RunStore } from "@hailuo/store";

/** A clip as verified on disk. */
export interface ClipFacts {
  /** Path relative to the run folder. */
  file: string;
  bytes: number;
  sha256: string;
  /** The file's modification time once saved: unchanged size and time mean an unchanged clip, no re-hash. */
  mtimeMs?: number;
  durationS: number;
  width: number;
  height: number;
  /** Everything ffprobe said at download (codec parameters, rate, audio); absent in older journals. */
  video?: VideoInfo;
}

/** Every state change of a run, one JSON object per line. */
export type JournalRecord =
  /** A run started; `priceUnverified` says why its price is the list price, assumed. */
  | {
      t: "run";
      name: string;
      manifest: string;
      items: number;
      pid: number;
      usdPerSecond?: number;
      priceUnverified?: string;
      /** The unit price of each other endpoint the run uses (its record's unit). */
      unitPricesUsd?: Record<string, number>;
      /** Why fal could not confirm another endpoint's price (its list price was assumed). */
      pricesUnverified?: Record<string, string>;
    }
  | { t: "submitting"; key: string; scene: string; take: number; attempt: number; usd?: number }
  | { t: "submitted"; key: string; handle: HailuoHandle }
  /** The submit's answer was lost after it left: fal may have queued (and billed) it. */
  | { t: "ambiguous"; key: string; message: string; requestId?: string }
  /** A submit whose answer was lost, found on fal's Platform API (requests by endpoint) and re-attached. */
  | { t: "reconciled"; key: string; handle: HailuoHandle; twin?: boolean }
  /** fal's request list was read and holds no request for the item's other lost submits. */
  | { t: "unfound"; key: string; lost: number; before: string }
  /** fal refused the submit before queueing it (or it never left): nothing was created. */
  | { t: "refused"; key: string; code: string; message: string }
  /** The result was fetched: the request is billed and its URL is what a paid clip is saved from. */
  | {
      t: "completed";
      key: string;
      requestId: string;
      videoUrl: string;
      fileSize?: number;
      seconds?: number;
      usd?: number;
    }
  /** The request is over without a video (failed generation, validation, policy): nothing billed. */
  | { t: "ended"; key: string; requestId: string; code: string }
  /** A paid clip could not be saved; it stays "completed, not saved" and resume downloads it again. */
  | { t: "save_failed"; key: string; requestId: string; code: string; message: string }
  | ({ t: "done"; key: string; requestId: string } & ClipFacts)
  /**
   * A paid clip found in clips/ whose records were lost, adopted as the generation's clip: billed
   * in an earlier run. `via`: its request id confirmed on fal's request list, or only the file
   * name's first eight letters (`disk`).
   */
  | ({
      t: "recovered";
      key: string;
      requestId: string;
      via: "fal" | "disk";
      usd: number;
      seconds: number;
    } & ClipFacts)
  | {
      t: "retry";
      key: string;
      attempt: number;
      code: string;
      message: string;
      delayMs: number;
      stage: string;
    }
  | {
      t: "failed";
      key: string;
      code: string;
      message: string;
      retryable: boolean;
      requestId?: string;
      live: boolean;
    }
  | { t: "cancelled"; key: string; requestId: string; answer: string }
  /**
   * A file put in fal's storage for the run (a start or end image, a clip's last frame), named by
   * its content: a resume finds its URL here and never uploads the same bytes twice. A record of
   * the run, not of a generation (no key). `scene` and `field` say what first needed it.
   */
  | { t: "uploaded"; sha256: string; url: string; bytes: number; scene?: string; field?: string }
  | { t: "interrupted" }
  | { t: "enqueued"; items: number }
  | { t: "finished"; ok: number; failed: number };

/** A record as stored, with its time. */
export type StoredRecord = JournalRecord & { at: string };

/**
 * The run's journal: append-only records in the run's store (a folder's fsynced JSON-lines file,
 * where a torn last line never swallows the next record, or a Redis stream). Secrets are scrubbed
 * from every record; a full or read-only disk surfaces as a LocalWriteError naming the file.
 */
export class JournalStore {
  /** What this store appended, as stored (kept only when opened with `keep`). */
  readonly appended: StoredRecord[] = [];

  private constructor(
    private readonly file: RecordLog,
    /** Where the journal is: a file's path, or the store's address. */
    readonly path: string,
    private readonly keep: boolean,
  ) {}

  /** Opens (creating if needed) a journal file for appending; `keep` remembers what it appends (a run holding the lock then knows the whole journal without reading it again). */
  static async open(path: string, options: { keep?: boolean } = {}): Promise<JournalStore> {
    return new JournalStore(await JsonlFile.open(path), path, Boolean(options.keep));
  }

  /** Opens the journal of a run store for appending. */
  static async on(store: RunStore, options: { keep?: boolean } = {}): Promise<JournalStore> {
    const where = store.kind === "local" ? journalPath(store.dir) : `${store.url} (journal)`;
    return new JournalStore(await store.openLog(), where, Boolean(options.keep));
  }

  /** Appends a record, waits until it is durable, and returns it as stored (with its time). */
  async append<R extends JournalRecord>(record: R): Promise<R & { at: string }> {
    const stored = { ...record, at: new Date().toISOString() };
    try {
      const line = redactSecrets(JSON.stringify(stored));
      await this.file.appendLine(line);
      // Kept as a reader of the file would see it (scrubbed), and only once it is durable.
      if (this.keep) this.appended.push(JSON.parse(line) as StoredRecord);
    } catch (error) {
      throw localWriteError(this.path, error) ?? error;
    }
    return stored;
  }

  /** Closes the file; every appended record is already durable. */
  close(): Promise<void> {
    return this.file.close();
  }
}

/** Where a run folder keeps its journal. */
export function journalPath(runDir: string): string {
  return join(runDir, "journal.jsonl");
}

/** A journal line that holds no record: what it was about, as far as its text still says. */
export interface JournalDamage {
  /** 1-based line number. */
  line: number;
  /** The generation it names, when its text still holds a key. */
  key?: string;
  /** Its record type (`completed`, `submitted`, …), when still legible. */
  record?: string;
  excerpt: string;
}

/** A journal as read: its records, and what was wrong with the rest of its lines. */
export interface JournalRead {
  records: StoredRecord[];
  /** Line numbers cut short by a crash or a full disk mid-write: their appends never resolved, so nothing acted on them. */
  tornLines: number[];
  /** Lines damaged otherwise: a record may be missing there, so amounts it touched cannot be vouched for. */
  damaged: JournalDamage[];
  /** Lines stored twice, counted once. */
  duplicateLines: number;
}

/**
 * Reads every record of a journal (a file's path or a run store; a missing journal is empty),
 * naming the lines that hold none.
 */
export async function readJournal(at: string | RunStore): Promise<JournalRead> {
  const read =
    typeof at === "string"
      ? await readJsonl<StoredRecord>(at, { dedupe: true })
      : at.kind === "local"
        ? await readJsonl<StoredRecord>(journalPath(at.dir), { dedupe: true })
        : parseJsonl<StoredRecord>((await at.readLog()).lines, { dedupe: true });
  const damaged = read.bad
    .filter((b) => b.kind === "damaged")
    .map(({ line, excerpt }) => {
      const key = /"key"\s*:\s*"([0-9a-f]{20})"/.exec(excerpt)?.[1];
      const record = /"t"\s*:\s*"([a-z_]+)"/.exec(excerpt)?.[1];
      return { line, excerpt, ...(key ? { key } : {}), ...(record ? { record } : {}) };
    });
  return {
    records: read.records,
    tornLines: read.bad.filter((b) => b.kind === "torn").map((b) => b.line),
    damaged,
    duplicateLines: read.duplicateLines,
  };
}
