import {
  createRunExecutor,
  createScheduler,
  loadJobs,
  nextFireTimes,
  readHistory,
} from "@hailuo/scheduler";
import { UsageError } from "../exit-codes.js";
import { connectFal } from "../fal-connection.js";
import { emitJson } from "../events.js";
import { formatInZone } from "./inspect.js";

/** `hailuo schedule [jobs-dir]`: run every job on its schedule (or one now with --once). */
export async function scheduleCommand(
  jobsDir: string,
  opts: { once?: string; redis?: string; prefix: string },
  signal: AbortSignal,
): Promise<number> {
  const jobs = await loadJobs(jobsDir);
  if (jobs.length === 0)
    throw new UsageError(`no jobs in ${jobsDir} (each job is <jobs-dir>/<name>/job.yaml)`);
  if (opts.once && !jobs.some((j) => j.name === opts.once))
    throw new UsageError(
      `no job named ${opts.once} in ${jobsDir} (have: ${jobs.map((j) => j.name).join(", ")})`,
    );
  const say = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  if (opts.redis) {
    if (opts.once) throw new UsageError("--once runs here; leave out --redis");
    const { upsertSchedules } = await import("@hailuo/queue");
    await upsertSchedules(jobs, { redisUrl: opts.redis, prefix: opts.prefix });
    for (const j of jobs)
      say(
        `${j.name}: "${j.cron}" (${j.timeZone}) registered as a BullMQ job scheduler; next ${nextFireTimes(j, new Date())[0]?.toISOString()}`,
      );
    say("workers (hailuo worker --redis …) fire the runs; this command can exit");
    return 0;
  }
  const conn = await connectFal({ say });
  try {
    const scheduler = createScheduler({
      jobs,
      execute: createRunExecutor({ client: conn.client }),
      log: say,
    });
    if (opts.once) {
      const rec = await scheduler.runNow(opts.once, signal);
      // Another scheduler holds this minute's fire lock: nothing ran here, nothing was spent.
      if (!rec) return 2;
      say(
        `${rec.job}: ${rec.status}${rec.reason ? `: ${rec.reason}` : ""}${rec.runDir ? ` → ${rec.runDir}` : ""}`,
      );
      // Skipped (a run of this job is going somewhere, or the day's budget is spent): refused
      // before spending anything, like every exit 2.
      return rec.status === "ok"
        ? 0
        : rec.status === "interrupted"
          ? 130
          : rec.status === "skipped"
            ? 2
            : 1;
    }
    for (const u of scheduler.upcoming())
      say(`${u.job}: next run ${u.next?.toISOString() ?? "never"}`);
    say("scheduler running; Ctrl-C stops it and leaves every run resumable");
    await scheduler.start(signal);
    return signal.aborted ? 130 : 0;
  } finally {
    await conn.close();
  }
}

/** `hailuo jobs list [jobs-dir]`: each job, its next fire time and last result. */
export async function jobsListCommand(jobsDir: string, opts: { json?: boolean }): Promise<number> {
  const jobs = await loadJobs(jobsDir);
  const rows = await Promise.all(
    jobs.map(async (j) => {
      const last = (await readHistory(j.outputRoot)).filter((h) => h.status !== "missed").at(-1);
      const next = nextFireTimes(j, new Date())[0];
      return {
        job: j.name,
        schedule: j.cron,
        timeZone: j.timeZone,
        next: next?.toISOString() ?? null,
        // People read fire times on the job's own clock (its cron is in that zone), not in UTC.
        nextLocal: next ? formatInZone(next, j.timeZone) : null,
        last: last
          ? {
              fireAt: last.fireAt,
              fireAtLocal: formatInZone(new Date(last.fireAt), j.timeZone),
              status: last.status,
              runDir: last.runDir ?? null,
            }
          : null,
      };
    }),
  );
  if (opts.json) {
    emitJson({ type: "jobs", jobs: rows });
    return 0;
  }
  for (const r of rows) {
    process.stdout.write(
      `${r.job.padEnd(20)} ${`"${r.schedule}" ${r.timeZone}`.padEnd(34)} next ${r.nextLocal ?? "never"}   last ${r.last ? `${r.last.status} (${r.last.fireAtLocal})` : "—"}\n`,
    );
  }
  return 0;
}
