/** A file of a run that lives beside its records: clips, the film, posters, the page. */
export interface ArtifactInfo {
  /** Path relative to the run (forward slashes): `clips/s1-1-abcd.mp4`. */
  name: string;
  bytes: number;
  /** SHA-256 of the bytes as stored, when the store keeps it (redis+s3 does). */
  sha256?: string;
  /** When the stored copy was last written (a file's mtime, an object's LastModified). */
  modifiedMs?: number;
}

/** An open journal: whole lines appended durably, in order, atomically across processes. */
export interface RecordLog {
  /** Appends one line (serialised, no newline) and resolves once it is durable. */
  appendLine(line: string): Promise<void>;
  /** Every append has resolved or failed. */
  close(): Promise<void>;
}

/** Lines read from a run's journal, and where the next read starts. */
export interface LogRead {
  lines: string[];
  /** Pass back to read only what was appended since. */
  cursor: string;
}

/**
 * Exclusive ownership of a run, with a token that grows with every new owner. While it is held,
 * the store's journal appends are fenced by it: once lost (`AcquireOptions.onLost`), an append
 * by this process is refused rather than written into the next owner's journal (`redis+s3`).
 */
export interface Ownership {
  /** Larger for every later owner: which owner came after which. */
  token: number;
  /**
   * Resolves only while this process still holds the run, and renews the hold for its whole
   * lifetime; once lost it rejects (and `onLost` is told). Called right before an act the next
   * owner could not undo: a re-sent submit, an upload of the report.
   */
  confirm(): Promise<void>;
  /** Gives the run up (a no-op once lost). */
  release(): Promise<void>;
}

/** Options of `RunStore.acquire`. */
export interface AcquireOptions {
  /** Give up at once when the run is owned rather than waiting for a dead owner's hold to lapse. */
  noWait?: boolean;
  /**
   * Called once when ownership is lost while held (its renewal refused, or unanswered past its
   * lifetime): from then another process may own the run, so the holder must stop.
   */
  onLost?: (error: Error) => void;
}

/** The small text documents a run keeps besides its journal. */
export type RunDocument = "run.json" | "picks.json";

/**
 * Where a run lives: its records (the journal), its spec (run.json), its picks, its artifacts,
 * and who owns it. `local` is a folder; `redis+s3` keeps records, spec, picks and ownership in
 * Redis and artifacts in an S3-compatible bucket, so workers share no filesystem.
 *
 * Files are made and read in `dir`: the run folder itself for `local`, a scratch mirror for
 * `redis+s3` (`putArtifact` uploads what was made there, `getArtifact` brings a file down).
 */
export interface RunStore {
  readonly kind: "local" | "redis+s3";
  /** What a user types to reach the run: a folder, or `s3://bucket/prefix`. Holds no secret. */
  readonly url: string;
  /** The local folder where the run's files are made and read. */
  readonly dir: string;
  /** Opens the journal for appending. */
  openLog(): Promise<RecordLog>;
  /** Whole lines appended after `cursor` (from the start without one). */
  readLog(cursor?: string): Promise<LogRead>;
  /** A document's text; `undefined` when the run has none. */
  readDocument(name: RunDocument): Promise<string | undefined>;
  /** Replaces a document atomically. */
  writeDocument(name: RunDocument, text: string): Promise<void>;
  /** Makes `dir/name` durable in the store (uploads it for `redis+s3`; a no-op for `local`). */
  putArtifact(name: string): Promise<ArtifactInfo>;
  /** Brings `name` into `dir`, checked against the stored checksum; false when the store has none. */
  getArtifact(name: string): Promise<boolean>;
  /** What the store holds under `name`, without reading it. */
  statArtifact(name: string): Promise<ArtifactInfo | undefined>;
  /** Artifacts whose names start with `prefix` (e.g. `clips/`). */
  listArtifacts(prefix: string): Promise<ArtifactInfo[]>;
  /** Takes ownership; throws `locked` when another live owner holds it. */
  acquire(options?: AcquireOptions): Promise<Ownership>;
  /** True when a live owner holds the run. */
  owned(): Promise<boolean>;
  /** Closes what the store opened (not the connections it was given). */
  close(): Promise<void>;
}

/**
 * An AWS SDK v3 `S3Client`, typed by the one method the store calls, so that the store's types
 * name no SDK type: the SDK is an optional dependency and a user without it must still compile.
 */
export interface S3ClientLike {
  send(command: never): Promise<unknown>;
}
