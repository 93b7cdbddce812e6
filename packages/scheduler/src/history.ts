import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { JsonlFile, atomicWrite, readJsonl } from "@hailuo/shared";

/** One line of a job's `history.jsonl`. */
export interface HistoryRecord {
  job: string;
  /** The fire time (ISO). */
  fireAt: string;
  /** `started`: a run took the job's run lock and began (its end is a later record with its runDir). */
  status: "started" | "ok" | "failed" | "interrupted" | "skipped" | "missed" | "enqueued";
  reason?: string;
  runDir?: string;
  startedAt?: string;
  endedAt?: string;
  exitCode?: number;
  /** Dollars this run spent on new clips. */
  spentUsd?: number;
  /**
   * On `started`: the most this run may spend (its budget), counted against `per_day` until the
   * run's own end record replaces it, so a run in flight or one that crashed is never free. On
   * `enqueued` (distributed mode): what the fire reserved in Redis, where the queue's guard counts it.
   */
  reservedUsd?: number;
  /** Which scheduler process wrote it. */
  pid: number;
}

/** Where a job keeps its bookkeeping. */
export function historyPath(outputRoot: string): string {
  return join(outputRoot, "history.jsonl");
}

/** Appends one record and fsyncs it (the shared JSON-lines file: a torn line never swallows it). */
export async function appendHistory(outputRoot: string, record: HistoryRecord): Promise<void> {
  await mkdir(outputRoot, { recursive: true });
  const file = await JsonlFile.open(historyPath(outputRoot));
  try {
    await file.appendLine(JSON.stringify(record));
  } finally {
    await file.close();
  }
}

/** Every complete record of a job's history (a torn last line from a crash is skipped). */
export async function readHistory(outputRoot: string): Promise<HistoryRecord[]> {
  return (await readJsonl<HistoryRecord>(historyPath(outputRoot))).records;
}

/** The last fire time this job's scheduler acted on, so missed runs can be found after a stop. */
export async function readLastFire(outputRoot: string): Promise<Date | undefined> {
  const text = await readFile(join(outputRoot, "scheduler-state.json"), "utf8").catch(
    () => undefined,
  );
  if (!text) return undefined;
  const at = (JSON.parse(text) as { lastFireAt?: string }).lastFireAt;
  return at ? new Date(at) : undefined;
}

/** Records the last fire time (atomically). */
export async function writeLastFire(outputRoot: string, at: Date): Promise<void> {
  await mkdir(outputRoot, { recursive: true });
  await atomicWrite(
    join(outputRoot, "scheduler-state.json"),
    `${JSON.stringify({ lastFireAt: at.toISOString() })}\n`,
  );
}
