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
  | {
      type: "dry_run";
      runDir: string;
      clips: number;
      reused: number;
      resumed: number;
      new: number;
      atMostUsd: number;
      price: { usdPerSecond: number; source: string; reason?: string };
    }
  | { type: "media_progress"; step: string; percent: number }
  | {
      type: "media_done";
      film?: string;
      filmSeconds?: number;
      filmMode?: string;
      filmWhy?: string;
      sheet?: string;
      page: string;
    }
  | { type: "status"; report: unknown }
  | {
      type: "estimate";
      name: string;
      generations: number;
      seconds: number;
      usd: number;
      price: unknown;
      items: unknown[];
    }
  | {
      type: "validate";
      file: string;
      kind: "manifest" | "job";
      name: string;
      scenes: number;
      generations: number;
      usd: number;
      assembles: boolean;
    }
  | { type: "jobs"; jobs: unknown[] }
  | { type: "queue"; runs: unknown[]; schedules: unknown[] }
  | { type: "cancelled"; runId: string; removed: number; stillRunning: number; gone: boolean }
  | { type: "submitted"; requestId: string }
  | { type: "clip"; file: string; requestId: string; bytes: number; sha256: string; probe: unknown }
  | { type: "thumbs"; posters: string[]; sheet?: string }
  | { type: "picked"; scene: string; take: number }
  | { type: "log"; message: string }
  | { type: "error"; code: string; message: string; exitCode: number };

/** Every event type, for the README check (the `satisfies` keeps it in step with the union). */
export const EVENT_TYPES = Object.keys({
  plan: 1,
  item: 1,
  billed: 1,
  warning: 1,
  interrupted: 1,
  finished: 1,
  price: 1,
  target: 1,
  http_retry: 1,
  summary: 1,
  dry_run: 1,
  media_progress: 1,
  media_done: 1,
  status: 1,
  estimate: 1,
  validate: 1,
  jobs: 1,
  queue: 1,
  cancelled: 1,
  submitted: 1,
  clip: 1,
  thumbs: 1,
  picked: 1,
  log: 1,
  error: 1,
} satisfies Record<HailuoEvent["type"], 1>);

/** Writes one event as a JSON line on stdout. */
export function emitJson(event: HailuoEvent): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}
