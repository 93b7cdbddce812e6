import { Queue, type Job } from "bullmq";
import type { Redis } from "ioredis";
import { JournalStore, readRunReport } from "@hailuo/runner";
import { HailuoError } from "@hailuo/shared";
import { QUEUES, openRedis, type QueueConnection } from "./connection.js";
import { runIdFor, type AssembleJobData } from "./run-flow.js";
import { createRunStores, runAddress } from "./run-stores.js";

/** One enqueued run as the queue sees it. */
export interface QueuedRun {
  runId: string;
  runDir: string;
  /** The assemble job's state: waiting-children while generations remain, then waiting, active, completed or failed. */
  state: string;
  generations: { finished: number; remaining: number; failed: number };
  enqueuedAt: string;
}

/** A registered job scheduler (from `schedule --redis`). */
export interface QueuedSchedule {
  job: string;
  pattern?: string;
  timeZone?: string;
  next?: string;
}

async function withQueues<T>(
  conn: QueueConnection,
  fn: (q: {
    assemble: Queue<AssembleJobData>;
    schedule: Queue;
    connection: Redis;
    prefix: string;
  }) => Promise<T>,
): Promise<T> {
  const connection = await openRedis(conn.redisUrl);
  const prefix = conn.prefix ?? "hailuo";
  const assemble = new Queue<AssembleJobData>(QUEUES.assemble, { connection, prefix });
  const schedule = new Queue(QUEUES.schedule, { connection, prefix });
  try {
    return await fn({ assemble, schedule, connection, prefix });
  } finally {
    await Promise.all([assemble.close(), schedule.close()]);
    connection.disconnect();
  }
}

async function describeRun(job: Job<AssembleJobData>): Promise<QueuedRun> {
  const c = await job.getDependenciesCount({
    processed: true,
    unprocessed: true,
    failed: true,
    ignored: true,
  });
  return {
    runId: String(job.id).replace(/-assemble$/, ""),
    runDir: job.data.runDir,
    state: await job.getState(),
    generations: {
      finished: (c.processed ?? 0) + (c.ignored ?? 0) + (c.failed ?? 0),
      remaining: c.unprocessed ?? 0,
      failed: (c.ignored ?? 0) + (c.failed ?? 0),
    },
    enqueuedAt: new Date(job.timestamp).toISOString(),
  };
}

/** Every run in the queue (newest first) and every registered schedule. */
export async function listQueue(
  conn: QueueConnection,
): Promise<{ runs: QueuedRun[]; schedules: QueuedSchedule[] }> {
  return withQueues(conn, async ({ assemble, schedule }) => {
    const jobs = await assemble.getJobs(
      ["waiting-children", "waiting", "active", "delayed", "prioritized", "failed", "completed"],
      0,
      199,
    );
    const runs = (await Promise.all(jobs.filter(Boolean).map(describeRun))).sort((a, b) =>
      b.enqueuedAt.localeCompare(a.enqueuedAt),
    );
    const schedules = (await schedule.getJobSchedulers()).map((s) => ({
      job: s.key,
      pattern: s.pattern ?? undefined,
      timeZone: s.tz ?? undefined,
      next: s.next ? new Date(s.next).toISOString() : undefined,
    }));
    return { runs, schedules };
  });
}

/** What `cancelRun` did. */
export interface CancelResult {
  runId: string;
  /** Generations removed from the queue (a job a stopped worker gave back may have a live request). */
  removed: number;
  /**
   * What the run's requests still live on fal will cost (the journal's in-flight money): billed
   * when they finish, whether or not a job still waits for them; `hailuo resume` saves their clips.
   */
  liveUsd: number;
  /** Generations a worker is running: they finish (fal bills them) and land in the run folder. */
  stillRunning: number;
  /** Whether the run is out of the queue entirely (a local `resume` may take the folder). */
  gone: boolean;
}

/**
 * Cancels an enqueued run: its waiting generations and its assemble job are removed. A generation
 * a worker already runs is left to finish (its request is live on fal, and stopping it would lose
 * a clip that may be paid); the run then assembles what it has.
 */
export async function cancelRun(conn: QueueConnection, runDirOrId: string): Promise<CancelResult> {
  return withQueues(conn, async ({ assemble, connection, prefix }) => {
    const runId = /^[0-9a-f]{16}$/.test(runDirOrId) ? runDirOrId : runIdFor(runAddress(runDirOrId));
    const parent = await assemble.getJob(`${runId}-assemble`);
    if (!parent)
      throw new HailuoError(
        "usage",
        `no queued run ${runDirOrId} (see \`hailuo queue ls --redis …\`)`,
      );
    const before = (await parent.getDependenciesCount({ unprocessed: true })).unprocessed ?? 0;
    await parent.removeUnprocessedChildren();
    const stillRunning =
      (await parent.getDependenciesCount({ unprocessed: true })).unprocessed ?? 0;
    let gone = false;
    if (
      stillRunning === 0 &&
      ["waiting-children", "waiting", "delayed", "prioritized"].includes(await parent.getState())
    ) {
      gone = await parent.remove().then(
        () => true,
        () => false,
      );
    }
    const stores = createRunStores({ redis: connection, keyPrefix: prefix });
    try {
      const store = stores.of(parent.data.runDir);
      const t = (await readRunReport(store)).totals;
      if (gone) {
        // The run is no longer owned by the queue: a local resume may carry on without --take-over.
        const journal = await JournalStore.on(store);
        await journal.append({ t: "finished", ok: t.done, failed: t.failed });
        await journal.close();
      }
      const liveUsd = t.inFlightUsd;
      return { runId, removed: before - stillRunning, stillRunning, gone, liveUsd };
    } finally {
      await stores.close();
    }
  });
}

/** Removes a registered schedule (its runs already enqueued stay); false when there was none. */
export async function removeSchedule(conn: QueueConnection, job: string): Promise<boolean> {
  return withQueues(conn, ({ schedule }) => schedule.removeJobScheduler(job));
}
