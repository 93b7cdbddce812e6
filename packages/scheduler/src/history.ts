import { mkdir, open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { atomicWrite } from "@hailuo/runner";

/** One line of a job's `history.jsonl`. */
export interface HistoryRecord {
  job: string;
  /** The fire time (ISO). */
  fireAt: string;
  status: "ok" | "failed" | "interrupted" | "skipped" | "missed" | "enqueued";
  reason?: string;
  runDir?: string;
  startedAt?: string;
  endedAt?: string;
  exitCode?: number;
  /** Dollars this run spent on new clips. */
  spentUsd?: number;
  /** Which scheduler process wrote it. */
  pid: number;
}

/** Where a job keeps its bookkeeping. */
export function historyPath(outputRoot: string): string {
  return join(outputRoot, "history.jsonl");
}

/** Appends one record and fsyncs it. */
export async function appendHistory(outputRoot: string, record: HistoryRecord): Promise<void> {
  await mkdir(outputRoot, { recursive: true });
  const handle = await open(historyPath(outputRoot), "a");
  try {
    await handle.write(`${JSON.stringify(record)}\n`);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** Every complete record of a job's history (a torn last line from a crash is skipped). */
export async function readHistory(outputRoot: string): Promise<HistoryRecord[]> {
  const text = await readFile(historyPath(outputRoot), "utf8").catch(() => "");
  return text.split("\n").flatMap((line) => {
    try {
      return line.trim() ? [JSON.parse(line) as HistoryRecord] : [];
    } catch {
      return [];
    }
  });
}

/** The last fire time this job's scheduler acted on, so missed runs can be found after a stop. */
export async function readLastFire(outputRoot: string): Promise<Date | undefined> {
  const text = await readFile(join(outputRoot, "scheduler-state.json"), "utf8").catch(() => undefined);
  if (!text) return undefined;
  const at = (JSON.parse(text) as { lastFireAt?: string }).lastFireAt;
  return at ? new Date(at) : undefined;
}

/** Records the last fire time (atomically). */
export async function writeLastFire(outputRoot: string, at: Date): Promise<void> {
  await mkdir(outputRoot, { recursive: true });
  await atomicWrite(join(outputRoot, "scheduler-state.json"), `${JSON.stringify({ lastFireAt: at.toISOString() })}\n`);
}
