import { existsSync } from "node:fs";
import { join } from "node:path";
import { Queue, type Job } from "bullmq";
import type { Redis } from "ioredis";
import type { HailuoClient, LivePrice } from "@hailuo/core";
import { BudgetError, planRun, readRunReport, sumUsd } from "@hailuo/runner";
import {
  appendHistory,
  loadJobDefinition,
  manifestForRun,
  runStamp,
  type HistoryRecord,
  type JobDefinition,
} from "@hailuo/scheduler";
import { QUEUES, openRedis, type QueueConnection } from "./connection.js";
import { claimJobRun, dropJobRunClaim, settleJobRun, type JobRunHolder } from "./job-guard.js";
import { enqueueRun, runIdFor } from "./run-flow.js";
import { createRunStores } from "./run-stores.js";

/** Data of a scheduled fire: which job file to run. */
export interface ScheduleJobData {
  jobFile: string;
}

/** Options of `processScheduledFire`. */
export interface FireOptions {
  /**
   * The account's price, asked once a fire needs it (a worker asks fal's pricing API). A job
   * with a budget is refused a run at a price fal did not confirm, as a local scheduled run is.
   * @default the list price, taken as confirmed (no budget can then be held to the bill)
   */
  price?: () => Promise<LivePrice>;
  /** Where the run's image files are uploaded at enqueue (see `EnqueueOptions.client`). */
  client?: Pick<HailuoClient, "upload">;
}

/** What one fire did: enqueued its run, or skipped it (the reason is in the job's history too). */
export interface FireResult {
  runDir: string;
  /** Absent when the run was enqueued. */
  skipped?: string;
}

/**
 * Registers every job as a BullMQ job scheduler (cron + time zone), replacing earlier ones of the
 * same name and removing schedulers of jobs that no longer exist. In distributed mode this is
 * the only timer: whichever worker takes a fire enqueues the run as a flow.
 */
export async function upsertSchedules(jobs: JobDefinition[], conn: QueueConnection): Promise<void> {
  const connection = await openRedis(conn.redisUrl);
  const queue = new Queue<ScheduleJobData>(QUEUES.schedule, {
    connection,
    prefix: conn.prefix ?? "hailuo",
  });
  try {
    const wanted = new Set(jobs.map((j) => j.name));
    for (const existing of await queue.getJobSchedulers()) {
      if (existing.key && !wanted.has(existing.key)) await queue.removeJobScheduler(existing.key);
    }
    for (const job of jobs) {
      await queue.upsertJobScheduler(
        job.name,
        { pattern: job.cron, tz: job.timeZone },
        { name: "scheduled-run", data: { jobFile: job.file } },
      );
    }
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

// A held key is taken over only after this many rounds of finding it stale and losing the race.
const CLAIM_ROUNDS = 3;

/**
 * Handles one scheduled fire inside a worker: the job's run for that time, enqueued as a flow.
 * Guarded in Redis, across every worker on every machine: a fire while the job's previous run is
 * in flight (from its fire until its assemble job ends) is skipped, and so is one whose run's most
 * (per-run budget, else its estimate) does not fit in what is left of `per_day`, counting runs in
 * flight at their reservation. Both are one atomic step with taking the run; each skip is written
 * to the job's history with its reason. A second fire of the same minute (same run folder) adds
 * nothing.
 */
export async function processScheduledFire(
  job: Job<ScheduleJobData>,
  conn: QueueConnection,
  options: FireOptions = {},
): Promise<FireResult> {
  const prefix = conn.prefix ?? "hailuo";
  const def = await loadJobDefinition(job.data.jobFile);
  // The time the scheduler aimed at, to the minute (the job may start a little later).
  const fireAt = new Date(Math.floor((job.timestamp + (job.opts.delay ?? 0)) / 60_000) * 60_000);
  const stamp = runStamp(fireAt, def.timeZone);
  // A job with store: keeps each run in its bucket; otherwise under its output folder.
  const runDir = def.store ? `${def.store}/${stamp}` : join(def.outputRoot, stamp);
  const manifest = await manifestForRun(def, fireAt);
  const base = { job: def.name, fireAt: fireAt.toISOString(), pid: process.pid };
  const skip = async (reason: string): Promise<FireResult> => {
    await appendHistory(def.outputRoot, { ...base, status: "skipped", reason });
    return { runDir, skipped: reason };
  };
  const budgeted = def.budget.perRunUsd !== undefined || def.budget.perDayUsd !== undefined;
  const price = options.price ? await options.price() : undefined;
  // At a price fal did not confirm, a budget would hold nothing: an account dearer than the list
  // would be billed past per_day. The local scheduler's runner refuses such a run the same way.
  if (budgeted && price && !price.verified)
    return skip(
      `price not verified (${price.reason ?? "no answer"}); a job with a budget runs only at the account's confirmed price`,
    );
  const usdPerSecond = price?.usdPerSecond;
  const estimateUsd = sumUsd([
    ...new Map(planRun(manifest, usdPerSecond).map((p) => [p.key, p.costUsd])).values(),
  ]);
  const reserveUsd = def.budget.perRunUsd ?? estimateUsd;
  const holder: JobRunHolder = {
    runId: runIdFor(runDir),
    runDir,
    fireAt: base.fireAt,
    since: new Date().toISOString(),
    fireJobId: String(job.id),
    day: stamp.slice(0, 10),
  };

  const redis = await openRedis(conn.redisUrl);
  try {
    let staleValue: string | undefined;
    for (let round = 0; ; round++) {
      const claim = await claimJobRun(redis, prefix, {
        job: def.name,
        outputRoot: def.outputRoot,
        holder,
        reserveUsd,
        perDayUsd: def.budget.perDayUsd,
        staleValue,
      });
      if (claim.kind === "claimed") break;
      // This minute's run already had its turn (the folder is the same): nothing to add or record.
      if (claim.kind === "fired") return { runDir, skipped: "already fired" };
      if (claim.kind === "over") {
        const perDay = def.budget.perDayUsd!;
        return await skip(
          `daily budget of $${perDay.toFixed(2)}: $${claim.spentUsd.toFixed(2)} spent or held by runs today, this run needs up to $${reserveUsd.toFixed(2)}`,
        );
      }
      const h = claim.holder;
      // A worker that died mid-fire left its own claim: this retry of the same fire carries on.
      if (h?.fireJobId === holder.fireJobId && h.runId === holder.runId) break;
      if (h?.runId === holder.runId) return { runDir, skipped: "already fired" };
      if (h && (await holderLive(redis, prefix, h))) {
        return await skip(
          `still running (run ${h.runId} in ${h.runDir}, fired ${h.fireAt}, in flight since ${h.since})`,
        );
      }
      if (round + 1 >= CLAIM_ROUNDS)
        return await skip(
          `the job's run key keeps changing hands (last: ${claim.raw.slice(0, 200)})`,
        );
      if (h) await settleStaleRun(redis, prefix, def, h);
      staleValue = claim.raw;
    }
    try {
      // With a daily cap the run is held to its reservation, so what it bills fits the day's room.
      const budgetUsd = def.budget.perDayUsd !== undefined ? reserveUsd : def.budget.perRunUsd;
      await enqueueRun({
        manifest,
        runDir,
        redisUrl: conn.redisUrl,
        prefix,
        falConcurrency: def.concurrency,
        budgetUsd,
        usdPerSecond,
        retries: def.retries,
        client: options.client,
      });
    } catch (error) {
      await dropJobRunClaim(redis, prefix, def.name, holder);
      // Over budget, or a manifest no queue can run (continue_from): the history says why.
      if (error instanceof BudgetError || (error as { code?: string }).code === "usage")
        return await skip((error as Error).message);
      throw error;
    }
    await appendHistory(def.outputRoot, {
      ...base,
      status: "enqueued",
      runDir,
      reservedUsd: reserveUsd,
    });
    return { runDir };
  } finally {
    redis.disconnect();
  }
}

/**
 * Whether the run holding a job's key is still going: its flow's assemble job exists and has not
 * ended, or there is no flow yet and the fire that took the key is still enqueueing it. A run
 * whose flow was removed (cancelled), whose assemble job completed or failed, or that is gone is
 * stale.
 */
async function holderLive(redis: Redis, prefix: string, h: JobRunHolder): Promise<boolean> {
  const assemble = new Queue(QUEUES.assemble, { connection: redis, prefix });
  const schedule = new Queue(QUEUES.schedule, { connection: redis, prefix });
  try {
    // The fire first: once it has ended, its flow exists (or it gave the key back), so the
    // assemble job's state that follows cannot be read from before the flow was added.
    if (
      ["active", "waiting", "delayed", "prioritized"].includes(
        await schedule.getJobState(h.fireJobId),
      )
    )
      return true;
    const state = await assemble.getJobState(`${h.runId}-assemble`);
    return state !== "unknown" && state !== "completed" && state !== "failed";
  } finally {
    await Promise.all([assemble.close(), schedule.close()]);
  }
}

/**
 * A stale run still holding its reservation never reached its assemble step (cancelled, or its
 * worker died): its day counts what its journal says was billed or may still be, and its history
 * says it stopped. Two workers settling it write the same amount; only one writes the record.
 */
async function settleStaleRun(
  redis: Redis,
  prefix: string,
  def: JobDefinition,
  h: JobRunHolder,
): Promise<void> {
  const stores = createRunStores({ redis, keyPrefix: prefix });
  const store = stores.of(h.runDir);
  const started =
    store.kind === "local"
      ? existsSync(join(h.runDir, "journal.jsonl"))
      : (await store.readLog()).lines.length > 0;
  const t = started
    ? (await readRunReport(store).catch(() => undefined))?.totals
    : { billedUsd: 0, inFlightUsd: 0, possibleDoubleChargeUsd: 0 };
  await stores.close();
  // An unreadable journal keeps the whole reservation: never count a run as cheaper than it may be.
  if (!t) return;
  const spentUsd = t.billedUsd + t.inFlightUsd + t.possibleDoubleChargeUsd;
  if (
    !(await settleJobRun(redis, prefix, {
      job: def.name,
      day: h.day,
      runId: h.runId,
      spentUsd,
      onlyIfReserved: true,
    }))
  )
    return;
  const rec: HistoryRecord = {
    job: def.name,
    fireAt: h.fireAt,
    status: "interrupted",
    runDir: h.runDir,
    spentUsd,
    reason: `its run left the queue before it ended (cancelled, or its worker stopped); resume with: hailuo resume ${h.runDir}`,
    pid: process.pid,
  };
  await appendHistory(def.outputRoot, rec);
}
