import { join } from "node:path";
import { Queue, type Job } from "bullmq";
import { appendHistory, loadJobDefinition, manifestForRun, runStamp, type JobDefinition } from "@hailuo/scheduler";
import { QUEUES, openRedis, type QueueConnection } from "./connection.js";
import { enqueueRun } from "./run-flow.js";

/** Data of a scheduled fire: which job file to run. */
export interface ScheduleJobData {
  jobFile: string;
}

/**
 * Registers every job as a BullMQ job scheduler (cron + time zone), replacing earlier ones of the
 * same name and removing schedulers of jobs that no longer exist. In distributed mode this is
 * the only timer: whichever worker takes a fire enqueues the run as a flow.
 */
export async function upsertSchedules(jobs: JobDefinition[], conn: QueueConnection): Promise<void> {
  const connection = await openRedis(conn.redisUrl);
  const queue = new Queue<ScheduleJobData>(QUEUES.schedule, { connection, prefix: conn.prefix ?? "hailuo" });
  try {
    const wanted = new Set(jobs.map((j) => j.name));
    for (const existing of await queue.getJobSchedulers()) {
      if (existing.key && !wanted.has(existing.key)) await queue.removeJobScheduler(existing.key);
    }
    for (const job of jobs) {
      await queue.upsertJobScheduler(job.name, { pattern: job.cron, tz: job.timeZone }, { name: "scheduled-run", data: { jobFile: job.file } });
    }
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/** Handles one scheduled fire inside a worker: the job's run for that time, enqueued as a flow. */
export async function processScheduledFire(job: Job<ScheduleJobData>, conn: QueueConnection): Promise<{ runDir: string }> {
  const def = await loadJobDefinition(job.data.jobFile);
  // The time the scheduler aimed at, to the minute (the job may start a little later).
  const fireAt = new Date(Math.floor((job.timestamp + (job.opts.delay ?? 0)) / 60_000) * 60_000);
  const runDir = join(def.outputRoot, runStamp(fireAt, def.timeZone));
  const manifest = await manifestForRun(def, fireAt);
  await enqueueRun({ manifest, runDir, redisUrl: conn.redisUrl, prefix: conn.prefix, falConcurrency: def.concurrency, budgetUsd: def.budget.perRunUsd });
  await appendHistory(def.outputRoot, { job: def.name, fireAt: fireAt.toISOString(), status: "enqueued", runDir, pid: process.pid });
  return { runDir };
}
