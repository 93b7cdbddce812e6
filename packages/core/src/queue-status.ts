import type { QueueStatus } from "@fal-ai/client";
import type { HailuoLog, HailuoStatus } from "./client-types.js";

/** A fal queue status in our words; `logs` are earlier lines to keep (stream events carry only new ones). */
export function toStatus(
  raw: QueueStatus | Record<string, unknown>,
  requestId: string,
  logs: HailuoLog[] = [],
): HailuoStatus {
  const r = raw as Record<string, unknown>;
  const state =
    r.status === "COMPLETED" ? "completed" : r.status === "IN_PROGRESS" ? "in_progress" : "queued";
  const rawLogs = Array.isArray(r.logs) ? (r.logs as HailuoLog[]) : [];
  const status: HailuoStatus = {
    state,
    requestId: (r.request_id as string | undefined) ?? requestId,
    logs: [
      ...logs,
      ...rawLogs.map((l) => ({
        message: String(l.message),
        level: l.level,
        timestamp: l.timestamp,
      })),
    ],
  };
  if (typeof r.queue_position === "number") status.queuePosition = r.queue_position;
  if (typeof r.error === "string" && r.error) status.error = r.error;
  if (typeof r.error_type === "string") status.errorType = r.error_type;
  const metrics = r.metrics as { inference_time?: number } | undefined;
  if (typeof metrics?.inference_time === "number") status.inferenceTimeS = metrics.inference_time;
  return status;
}
