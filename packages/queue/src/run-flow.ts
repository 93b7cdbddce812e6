import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { FlowProducer, Queue } from "bullmq";
import type { HailuoClient } from "@hailuo/core";
import type { Manifest } from "@hailuo/manifest";
import { HailuoError } from "@hailuo/shared";
import {
  BudgetError,
  JournalStore,
  PreflightError,
  RunLockedError,
  planRun,
  sumUsd,
  unrecordedClips,
  uploadRunImages,
  writeRunFile,
  type Backend,
} from "@hailuo/runner";
import { runIdOf } from "@hailuo/store";
import { QUEUES, openRedis, type QueueConnection } from "./connection.js";
import { openRunBudget } from "./run-budget.js";
import { createRunStores, runAddress } from "./run-stores.js";

/** Data of one generate job: which run, which generation. */
export interface GenerateJobData {
  /** The run's absolute folder, or its bucket's `s3://` address (its records are in Redis). */
  runDir: string;
  key: string;
  scene: string;
  take: number;
}

/** Data of a run's assemble job. */
export interface AssembleJobData {
  runDir: string;
}

/** Options of `enqueueRun`. */
export interface EnqueueOptions extends QueueConnection {
  manifest: Manifest;
  /**
   * Where the run lives: a folder every worker mounts (the shared output root), or an
   * `s3://bucket/prefix` address, whose records go to this Redis and files to the bucket, so
   * workers share nothing else.
   */
  runDir: string;
  /** fal's in-progress limit for the account, enforced across all workers. @default 2 */
  falConcurrency?: number;
  /**
   * Refuse to enqueue past this many dollars; workers then reserve each submit's price against it
   * in Redis (atomically, across machines), as a local run does in memory.
   */
  budgetUsd?: number;
  /** Where the workers' requests go; recorded in run.json so a worker elsewhere refuses the run. */
  backend?: Backend;
  /** The account's price, recorded in run.json: workers plan, reserve and journal with it. @default the built-in table */
  usdPerSecond?: number;
  /** Retries per generation, recorded in run.json: every worker uses them. @default each worker's own */
  retries?: number;
  /**
   * Where the run's image files are uploaded at enqueue (journaled by content), so workers that
   * lack the files submit with their URLs. Required when a scene has `image:` or `end_image:`
   * files; it must reach the backend the workers use.
   */
  client?: Pick<HailuoClient, "upload">;
}

/** What was enqueued. */
export interface EnqueuedRun {
  runId: string;
  parentJobId: string;
  childJobIds: string[];
}

/** A run's stable id: the same folder or bucket address always gives the same job ids, so enqueueing twice adds nothing. */
export function runIdFor(runDir: string): string {
  return runIdOf(runDir);
}

/**
 * Enqueues a run as a BullMQ flow: one child job per scene-take (job id = run id + the
 * generation's input key) and a parent assemble job that runs once every child has finished.
 * The account's concurrency is set as the generate queue's global concurrency.
 */
export async function enqueueRun(options: EnqueueOptions): Promise<EnqueuedRun> {
  const { manifest, prefix = "hailuo", falConcurrency = 2 } = options;
  const runDir = runAddress(options.runDir);
  // A continuing scene's first frame is its source's last, known only once that clip is chosen:
  // parallel jobs cannot wait for it, so such a run is refused before anything is recorded.
  const continuing = manifest.scenes.find((sc) => sc.continueFrom);
  if (continuing)
    throw new HailuoError(
      "usage",
      `scene ${continuing.id} continues from ${continuing.continueFrom} (continue_from): its first frame exists only once that clip is made, which a queue's parallel jobs cannot wait for; run it in one process with hailuo run (into a folder); nothing was enqueued`,
      { retryable: false },
    );
  const plan = planRun(manifest, options.usdPerSecond);
  const unique = [...new Map(plan.map((p) => [p.key, p])).values()];
  const estimate = sumUsd(unique.map((p) => p.costUsd));
  if (options.budgetUsd !== undefined && estimate > options.budgetUsd) {
    throw new BudgetError(
      `this run needs up to $${estimate.toFixed(2)}, over the budget of $${options.budgetUsd.toFixed(2)}; nothing was enqueued`,
    );
  }
  // Redis first: when it cannot be reached, the folder must not be claimed for a queue run that never was.
  const connection = await openRedis(options.redisUrl);
  const stores = createRunStores({ redis: connection, keyPrefix: prefix });
  try {
    const store = stores.of(runDir);
    if (store.kind === "local") await mkdir(join(runDir, "clips"), { recursive: true });
    if (await store.owned())
      throw new RunLockedError(
        `${runDir} is being run by a local hailuo process (it holds the run); wait for it to finish before enqueueing it`,
      );
    // The queue keeps a finished run's assemble job: its id would stand for a new one, so the
    // generations of a second enqueue would be paid and never reported nor assembled.
    const assembleQueue = new Queue(QUEUES.assemble, { connection, prefix });
    const ended = await assembleQueue
      .getJobState(`${runIdFor(runDir)}-assemble`)
      .finally(() => assembleQueue.close());
    if (ended === "completed" || ended === "failed")
      throw new HailuoError(
        "usage",
        `${runDir} was enqueued before and its run has ended; carry it on in one process (\`hailuo resume ${runDir}\`, or \`hailuo run\` with the edited manifest and --out), or enqueue into a new folder; nothing was enqueued`,
        { retryable: false },
      );
    // Paid clips the journal lost (a deleted journal, a Redis that lost a bucket run's records):
    // jobs would pay for them again; a resume in one process adopts them first.
    const unrecorded = await unrecordedClips(store, unique);
    if (unrecorded.length)
      throw new PreflightError([
        `${runDir} holds ${unrecorded.length} paid clip(s) its journal has no record of (${unrecorded.slice(0, 3).join(", ")}${unrecorded.length > 3 ? ", …" : ""}): its records were lost. Run \`hailuo resume ${runDir}\`${store.kind === "local" ? "" : " --redis …"} first: it adopts them, never paying twice`,
      ]);
    // Images go up before anything else is recorded (and before any job exists): a worker finds
    // each one's URL in the journal; a refusal or a failed upload leaves no run.json behind.
    const withFiles = unique.filter((p) =>
      Object.values(p.images).some((slot) => slot.kind === "file"),
    );
    if (withFiles.length) {
      if (!options.client)
        throw new HailuoError(
          "usage",
          `${withFiles[0]!.sceneId} has an image file: a distributed run uploads its images when it is enqueued, so enqueue it where fal (or the workers' emulator) can be reached; nothing was enqueued`,
          { retryable: false },
        );
      await uploadRunImages({ client: options.client, store, items: withFiles });
    }
    await writeRunFile(store, manifest, options.backend, undefined, {
      usdPerSecond: options.usdPerSecond,
      budgetUsd: options.budgetUsd,
      retries: options.retries,
    });
    // From here until the assemble job records "finished", a local run into this folder is refused.
    const journal = await JournalStore.on(store);
    await journal.append({ t: "enqueued", items: unique.length });
    await journal.close();
  } catch (error) {
    connection.disconnect();
    throw error;
  } finally {
    await stores.close();
  }
  const runId = runIdFor(runDir);
  // Before any job exists, so no worker submits without the budget in place.
  if (options.budgetUsd !== undefined)
    await openRunBudget(connection, prefix, runId, options.budgetUsd);
  const flows = new FlowProducer({ connection, prefix });
  const generate = new Queue(QUEUES.generate, { connection, prefix });
  try {
    await generate.setGlobalConcurrency(falConcurrency);
    const childJobIds = unique.map((p) => `${runId}-${p.key}`);
    await flows.add({
      name: "assemble",
      queueName: QUEUES.assemble,
      data: { runDir } satisfies AssembleJobData,
      opts: { jobId: `${runId}-assemble`, removeOnComplete: { count: 1000 } },
      children: unique.map((p, i) => ({
        name: "generate",
        queueName: QUEUES.generate,
        data: { runDir, key: p.key, scene: p.sceneId, take: p.take } satisfies GenerateJobData,
        opts: {
          jobId: childJobIds[i]!,
          // Retries inside the job follow the runner's classification; these attempts only cover a
          // worker that stopped mid-job (the next one re-attaches from the journal, never resubmits).
          attempts: 5,
          backoff: { type: "exponential", delay: 1000 },
          // A scene that failed for good still lets the film be assembled from the others.
          ignoreDependencyOnFailure: true,
        },
      })),
    });
    return { runId, parentJobId: `${runId}-assemble`, childJobIds };
  } finally {
    await flows.close();
    await generate.close();
    connection.disconnect();
  }
}
