import type { HailuoClient } from "@hailuo/core";
import { runMediaStage } from "@hailuo/publish";
import { runManifest, type RunEvent } from "@hailuo/runner";
import { manifestForRun } from "./job-definition.js";
import type { JobExecutor } from "./scheduler.js";

/** The real executor: the job's manifest through the runner, then the media stage. */
export function createRunExecutor(options: {
  client: HailuoClient;
  onEvent?: (e: RunEvent) => void;
  media?: boolean;
}): JobExecutor {
  return async (job, { fireAt, runDir, budgetUsd, signal }) => {
    const manifest = await manifestForRun(job, fireAt);
    const result = await runManifest({
      manifest,
      runDir,
      client: options.client,
      concurrency: job.concurrency,
      retries: job.retries,
      budgetUsd,
      signal,
      onEvent: options.onEvent,
    });
    const t = result.report.totals;
    if (options.media !== false && !result.interrupted && t.done + t.cached > 0) {
      await runMediaStage(runDir, manifest, { assemble: job.assemble, signal });
    }
    return {
      status: result.interrupted ? "interrupted" : result.exitCode === 0 ? "ok" : "failed",
      exitCode: result.exitCode,
      spentUsd: t.thisRunBilledUsd,
    };
  };
}
