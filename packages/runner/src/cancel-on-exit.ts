import type { HailuoClient } from "@hailuo/core";
import type { RunEvent } from "./events.js";
import type { JournalStore } from "./journal-store.js";
import type { LiveEntry } from "./run-guards.js";

/**
 * On an interrupt with `--cancel-on-exit`, asks fal to cancel requests still waiting in its queue.
 * A cancel is journaled but the request stays live: fal's cancel is a signal and a request may
 * still complete (and bill), so resume asks fal how it ended (docs, queue cancel).
 */
export async function cancelQueued(
  client: HailuoClient,
  live: Map<string, LiveEntry>,
  journal: JournalStore,
  emit: (e: RunEvent) => void,
): Promise<void> {
  for (const [key, { handle, state }] of live) {
    if (state !== "queued") continue;
    const answer = await client
      .cancel(handle, { signal: AbortSignal.timeout(10_000) })
      .catch((error: Error) => `failed: ${error.message}`);
    if (answer !== "cancellation_requested" && answer !== "not_found") {
      emit({
        type: "warning",
        message: `could not cancel ${handle.requestId} (${answer}); resume will pick it up`,
      });
      continue;
    }
    await journal.append({ t: "cancelled", key, requestId: handle.requestId, answer });
  }
}
