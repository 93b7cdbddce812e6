import type { RunEvent } from "@hailuo/runner";

/**
 * Every line `hailuo … --json` prints on stdout is one of these objects, told apart by `type`.
 * The README's "JSON output" section documents the same fields (a test holds them together).
 * Library users: `import type { HailuoEvent } from "@hailuo/cli/events"`.
 */
export type HailuoEvent =
  | RunEvent
  | { type: "price"; usdPerSecond: number; source: string; reason?: string }
  | { type: "target"; target: string; billed: boolean; toSubmit: number; atMostUsd: number }
  | { type: "http_retry"; operation: string; attempt: number; status?: number; requestId?: string }
  | { type: "summary"; runDir: string; exitCode: number; totals: Record<string, number> }
  | { type: "dry_run"; runDir: string; clips: number; reused: number; resumed: number; new: number; atMostUsd: number; price: { usdPerSecond: number; source: string; reason?: string } }
  | { type: "media_progress"; step: string; percent: number }
  | { type: "media_done"; film?: string; filmSeconds?: number; filmMode?: string; sheet?: string; page: string }
  | { type: "status"; report: unknown }
  | { type: "estimate"; name: string; generations: number; seconds: number; usd: number; price: unknown; items: unknown[] }
  | { type: "validate"; file: string; kind: "manifest" | "job"; name: string; scenes: number; generations: number; usd: number; assembles: boolean }
  | { type: "jobs"; jobs: unknown[] }
  | { type: "queue"; runs: unknown[]; schedules: unknown[] }
  | { type: "cancelled"; runId: string; removed: number; stillRunning: number; gone: boolean }
  | { type: "submitted"; requestId: string }
  | { type: "clip"; file: string; requestId: string; bytes: number; sha256: string; probe: unknown }
  | { type: "thumbs"; posters: string[]; sheet?: string }
  | { type: "log"; message: string }
  | { type: "error"; code: string; message: string; exitCode: number };

/** Writes one event as a JSON line on stdout. */
export function emitJson(event: HailuoEvent): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}
