import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import { inputHash, type Emulator } from "@hailuo/emulator";
import { journalPath, planRun, readJournal, readRunReport } from "@hailuo/runner";
import { loadJobDefinition, manifestForRun, readHistory, runStamp } from "@hailuo/scheduler";
import {
  decodeErrors,
  holdableClock,
  makeTempDir,
  startTestEmulator,
  waitFor,
} from "@hailuo/test-utils";
import {
  QUEUES,
  claimJobRun,
  guardKeys,
  jobDaySpendUsd,
  releaseJobRun,
  removeAllQueues,
  runIdFor,
  startWorker,
  type JobRunHolder,
  type RunningWorker,
} from "./index.js";
import { REDIS } from "./test-queue.js";

// Distributed schedules against real Redis, the emulator and two in-process workers standing for
// two machines. Fires are real jobs on the schedule queue (with the time a job scheduler would
// give them), so either worker may take each one. The emulator's timers can be held: while held
// no request finishes, so a run lasts longer than its job's interval for as long as the test wants.

// 07:00 New York time on a fixed day: each fire names its own minute, so its run folder and run id.
const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const MINUTE = 60_000;
const TZ = "America/New_York";

describe("distributed schedules: one run of a job at a time, per_day across workers", () => {
  const prefix = `hailuo-sgtest-${randomBytes(4).toString("hex")}`;
  const emuClock = holdableClock();
  let emu: Emulator;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let redis: Redis;
  let schedule: Queue;
  let assemble: Queue;
  let workers: RunningWorker[] = [];
  beforeAll(async () => {
    emu = await startTestEmulator({ clock: emuClock.clock, render: "shared", slots: 4 });
    tmp = await makeTempDir();
    redis = new Redis(REDIS, { maxRetriesPerRequest: null });
    schedule = new Queue(QUEUES.schedule, { connection: redis, prefix });
    assemble = new Queue(QUEUES.assemble, { connection: redis, prefix });
    const client = createHailuoClient({ emulatorUrl: emu.url });
    workers = await Promise.all(
      [0, 1].map(() =>
        startWorker({ redisUrl: REDIS, prefix, client, concurrency: 2, retryBaseDelayMs: 10 }),
      ),
    );
  });
  afterAll(async () => {
    emuClock.release();
    await Promise.all(workers.map((w) => w.close()));
    await schedule.close();
    await assemble.close();
    await removeAllQueues({ redisUrl: REDIS, prefix });
    // Nothing of the guards (or the queues) outlives the prefix.
    const left = await redis.keys(`${prefix}:*`);
    redis.disconnect();
    expect(left).toEqual([]);
    await emu.close();
    await tmp.cleanup();
  });

  /** A job that fires every minute; two 6 s scenes ($0.54 a run at the emulator's price). */
  async function writeJob(name: string, extra = ""): Promise<{ file: string; outputRoot: string }> {
    const tag = randomBytes(3).toString("hex");
    const dir = join(tmp.dir, "jobs", name);
    await mkdir(dir, { recursive: true });
    const file = join(dir, "job.yaml");
    await writeFile(
      file,
      `schedule: "* * * * *"\ntimezone: ${TZ}\noutput: ../../out-${name}\n${extra}manifest:\n  name: ${name}\n  scenes:\n    - prompt: "${name} ${tag} one"\n    - prompt: "${name} ${tag} two"\n  thumbnails: { preview: none }\n`,
    );
    return { file, outputRoot: join(tmp.dir, `out-${name}`) };
  }

  /** One fire of a job as its job scheduler would add it; resolves once a worker has handled it. */
  async function fire(jobFile: string, at: number): Promise<void> {
    const id = `fire-${randomBytes(4).toString("hex")}`;
    await schedule.add("scheduled-run", { jobFile }, { jobId: id, timestamp: at });
    await waitFor(async () => (await schedule.getJobState(id)) === "completed", 30_000);
  }

  const runDirOf = (outputRoot: string, at: number) => join(outputRoot, runStamp(new Date(at), TZ));
  const assembled = (runDir: string) => async () =>
    (await assemble.getJobState(`${runIdFor(runDir)}-assemble`)) === "completed";
  const statuses = async (outputRoot: string) =>
    (await readHistory(outputRoot)).map((h) => `${h.status} ${h.fireAt}`);

  /**
   * The three money facts over a job's runs: one submit per scene-take per run, the emulator's
   * bill equals the runs' reports, every clip decodes. Returns the bill.
   */
  async function moneyFacts(
    jobFile: string,
    runDirs: string[],
    billedBefore: number,
  ): Promise<number> {
    await waitFor(() => emu.stats().completed === emu.stats().submits.total);
    const plan = planRun(await manifestForRun(await loadJobDefinition(jobFile), new Date(T0)));
    expect(plan.map((p) => emu.stats().submits.byInput[inputHash(p.input)] ?? 0)).toEqual(
      plan.map(() => runDirs.length),
    );
    let reported = 0;
    for (const runDir of runDirs) {
      const t = (await readRunReport(runDir)).totals;
      reported += t.billedUsd + t.possibleDoubleChargeUsd;
      const clips = (await readdir(join(runDir, "clips"))).filter((f) => f.endsWith(".mp4"));
      expect(clips).toHaveLength(plan.length);
      for (const f of clips) expect(await decodeErrors(join(runDir, "clips", f)), f).toBe("");
    }
    const billed = emu.stats().billed.usd - billedBefore;
    expect(billed).toBeCloseTo(reported, 6);
    return billed;
  }

  it("a fire while the job's previous run is still going is skipped, naming the run", async () => {
    const job = await writeJob("overlap");
    const billedBefore = emu.stats().billed.usd;
    const submitsBefore = emu.stats().submits.total;
    const first = runDirOf(job.outputRoot, T0);
    emuClock.hold();
    await fire(job.file, T0);
    await waitFor(() => emu.stats().submits.total === submitsBefore + 2, 30_000);
    // The run outlasts its minute: the next minute's fire comes while both clips are in flight.
    await fire(job.file, T0 + MINUTE);
    expect(await redis.exists(guardKeys.running(prefix, "overlap"))).toBe(1);
    emuClock.release();
    await waitFor(assembled(first), 60_000);
    const skipped = (await readHistory(job.outputRoot)).filter((h) => h.status === "skipped");
    expect(skipped.map((h) => h.fireAt)).toEqual([new Date(T0 + MINUTE).toISOString()]);
    expect(skipped[0]!.reason).toContain(
      `still running (run ${runIdFor(first)} in ${first}, fired ${new Date(T0).toISOString()}`,
    );
    expect(await statuses(job.outputRoot)).toEqual([
      `enqueued ${iso(T0)}`,
      `skipped ${iso(T0 + MINUTE)}`,
      `ok ${iso(T0)}`,
    ]);
    // The run's end freed the job: its next fire runs.
    expect(await redis.exists(guardKeys.running(prefix, "overlap"))).toBe(0);
    expect(emu.stats().submits.total - submitsBefore).toBe(2);
    expect(await moneyFacts(job.file, [first], billedBefore)).toBeCloseTo(0.54, 6);
  }, 90_000);

  it("a second fire of the same minute (the same run folder) adds nothing, during the run or after it", async () => {
    const job = await writeJob("twice");
    const billedBefore = emu.stats().billed.usd;
    const submitsBefore = emu.stats().submits.total;
    const runDir = runDirOf(job.outputRoot, T0);
    emuClock.hold();
    await fire(job.file, T0);
    await waitFor(() => emu.stats().submits.total === submitsBefore + 2, 30_000);
    await fire(job.file, T0 + 20_000);
    emuClock.release();
    await waitFor(assembled(runDir), 60_000);
    await fire(job.file, T0 + 40_000);
    expect(await statuses(job.outputRoot)).toEqual([`enqueued ${iso(T0)}`, `ok ${iso(T0)}`]);
    // Not enqueued again: the folder's journal ends with the run's end, so a local resume may take it.
    expect((await readJournal(journalPath(runDir))).records.at(-1)).toMatchObject({
      t: "finished",
    });
    expect(await moneyFacts(job.file, [runDir], billedBefore)).toBeCloseTo(0.54, 6);
  }, 90_000);

  it("per_day with room for one run: the day's second fire is refused; the next day (job's zone) runs", async () => {
    // Each run may spend up to $0.60 (per_run) and bills $0.54: the day has room for one.
    const job = await writeJob("daily", "budget:\n  per_run: 0.6\n  per_day: 0.8\n");
    const billedBefore = emu.stats().billed.usd;
    const submitsBefore = emu.stats().submits.total;
    // 23:00 and 23:30 on the 24th in New York are the 25th in UTC; 00:10 is the 25th in both.
    const late = Date.UTC(2026, 10, 25, 4, 0);
    const first = runDirOf(job.outputRoot, late);
    emuClock.hold();
    await fire(job.file, late);
    await waitFor(() => emu.stats().submits.total === submitsBefore + 2, 30_000);
    // In flight, the run counts at its reservation.
    expect(await jobDaySpendUsd(redis, prefix, "daily", "2026-11-24")).toBeCloseTo(0.6, 6);
    emuClock.release();
    await waitFor(assembled(first), 60_000);
    // The day holds what the run's report says it billed, not its reservation.
    const t = (await readRunReport(first)).totals;
    expect(await jobDaySpendUsd(redis, prefix, "daily", "2026-11-24")).toBeCloseTo(
      t.billedUsd + t.possibleDoubleChargeUsd,
      6,
    );

    await fire(job.file, late + 30 * MINUTE);
    const refused = (await readHistory(job.outputRoot)).find((h) => h.status === "skipped");
    expect(refused?.reason).toBe(
      "daily budget of $0.80: $0.54 spent or held by runs today, this run needs up to $0.60",
    );
    expect(existsSync(runDirOf(job.outputRoot, late + 30 * MINUTE))).toBe(false);

    const nextDay = late + 70 * MINUTE;
    await fire(job.file, nextDay);
    await waitFor(assembled(runDirOf(job.outputRoot, nextDay)), 60_000);
    expect(await statuses(job.outputRoot)).toEqual([
      `enqueued ${iso(late)}`,
      `ok ${iso(late)}`,
      `skipped ${iso(late + 30 * MINUTE)}`,
      `enqueued ${iso(nextDay)}`,
      `ok ${iso(nextDay)}`,
    ]);
    // Each day's bill stays within per_day; the money adds up over both runs.
    const billed = await moneyFacts(
      job.file,
      [first, runDirOf(job.outputRoot, nextDay)],
      billedBefore,
    );
    expect(billed).toBeCloseTo(1.08, 6);
    for (const day of ["2026-11-24", "2026-11-25"])
      expect(await jobDaySpendUsd(redis, prefix, "daily", day)).toBeLessThanOrEqual(0.8);
  }, 90_000);

  it("a run key left by a run that is gone is taken over by exactly one of two fires", async () => {
    const job = await writeJob("stale", "budget:\n  per_day: 1.5\n");
    const billedBefore = emu.stats().billed.usd;
    const submitsBefore = emu.stats().submits.total;
    // A worker stood for here died after taking the key for 06:59: no flow was ever enqueued for
    // it and its fire job is gone. Its reservation holds the day until the key is taken over.
    const ghost = runDirOf(job.outputRoot, T0 - MINUTE);
    const holder: JobRunHolder = {
      runId: runIdFor(ghost),
      runDir: ghost,
      fireAt: iso(T0 - MINUTE),
      since: iso(T0 - MINUTE),
      fireJobId: "fire-gone",
      day: "2026-11-24",
    };
    expect(
      await claimJobRun(redis, prefix, {
        job: "stale",
        outputRoot: job.outputRoot,
        holder,
        reserveUsd: 0.54,
        perDayUsd: 1.5,
      }),
    ).toEqual({ kind: "claimed" });
    const raw = (await redis.get(guardKeys.running(prefix, "stale")))!;

    // Two workers found it stale at once: compare-and-set lets exactly one take it.
    const takers = ["a", "b"].map((w): JobRunHolder => ({
      ...holder,
      runId: `taker-${w}`,
      runDir: `${ghost}-${w}`,
      fireJobId: `fire-${w}`,
    }));
    const claims = await Promise.all(
      takers.map((h) =>
        claimJobRun(redis, prefix, {
          job: "stale",
          outputRoot: job.outputRoot,
          holder: h,
          reserveUsd: 0,
          staleValue: raw,
        }),
      ),
    );
    expect(claims.map((c) => c.kind).sort()).toEqual(["claimed", "held"]);
    const winner = takers[claims.findIndex((c) => c.kind === "claimed")]!;
    expect(claims.find((c) => c.kind === "held")).toMatchObject({
      holder: { runId: winner.runId },
    });
    expect(await releaseJobRun(redis, prefix, "stale", winner.runId)).toBe(true);
    await redis.set(guardKeys.running(prefix, "stale"), raw);

    // Two fires of the real job on two workers: one takes the stale key over and runs, the other
    // finds that run in flight. The ghost's day counts what its (absent) journal billed: nothing.
    emuClock.hold();
    await Promise.all([fire(job.file, T0), fire(job.file, T0 + MINUTE)]);
    emuClock.release();
    const history = await readHistory(job.outputRoot);
    const enqueued = history.filter((h) => h.status === "enqueued");
    expect(enqueued).toHaveLength(1);
    expect(history.filter((h) => h.status === "skipped").map((h) => h.reason)).toEqual([
      expect.stringContaining(`still running (run ${runIdFor(enqueued[0]!.runDir!)}`),
    ]);
    expect(history.filter((h) => h.status === "interrupted")).toMatchObject([
      { runDir: ghost, spentUsd: 0 },
    ]);
    await waitFor(assembled(enqueued[0]!.runDir!), 60_000);
    expect(emu.stats().submits.total - submitsBefore).toBe(2);
    const billed = await moneyFacts(job.file, [enqueued[0]!.runDir!], billedBefore);
    expect(billed).toBeLessThanOrEqual(1.5);
    expect(await jobDaySpendUsd(redis, prefix, "stale", "2026-11-24")).toBeCloseTo(billed, 6);
  }, 90_000);

  /** One fire handled by a worker of its own against an emulator of its own (its own prefix too). */
  async function fireAlone(
    emuOptions: Parameters<typeof startTestEmulator>[0],
    jobFile: string,
    at: number,
  ) {
    const own = await startTestEmulator({ render: "shared", ...emuOptions });
    const ownPrefix = `${prefix}-own-${randomBytes(3).toString("hex")}`;
    const worker = await startWorker({
      redisUrl: REDIS,
      prefix: ownPrefix,
      client: createHailuoClient({ emulatorUrl: own.url }),
      retryBaseDelayMs: 10,
    });
    const queue = new Queue(QUEUES.schedule, { connection: redis, prefix: ownPrefix });
    try {
      const id = `fire-${randomBytes(4).toString("hex")}`;
      await queue.add("scheduled-run", { jobFile }, { jobId: id, timestamp: at });
      await waitFor(async () => (await queue.getJobState(id)) === "completed", 30_000);
      return own.stats();
    } finally {
      await worker.close();
      await queue.close();
      await removeAllQueues({ redisUrl: REDIS, prefix: ownPrefix });
      await own.close();
    }
  }

  it("per_day is held at the account's price: a run that fits at the list price but not at the account's is refused", async () => {
    const job = await writeJob("dear", "budget:\n  per_day: 0.8\n");
    // The account pays $0.09/s, twice the list price: the run needs $1.08, not $0.54.
    const stats = await fireAlone({ priceUsdPerSecond: 0.09 }, job.file, T0);
    expect(await statuses(job.outputRoot)).toEqual([`skipped ${iso(T0)}`]);
    expect((await readHistory(job.outputRoot))[0]!.reason).toContain("this run needs up to $1.08");
    expect(stats.submits.total).toBe(0);
    expect(stats.billed.usd).toBe(0);
  }, 60_000);

  it("a job with a budget is refused a run at a price fal did not confirm", async () => {
    const job = await writeJob("unpriced", "budget:\n  per_day: 5\n");
    const stats = await fireAlone({ platformApi: "forbidden" }, job.file, T0);
    expect(await statuses(job.outputRoot)).toEqual([`skipped ${iso(T0)}`]);
    expect((await readHistory(job.outputRoot))[0]!.reason).toMatch(
      /^price not verified \(.+\); a job with a budget runs only at the account's confirmed price$/,
    );
    expect(stats.submits.total).toBe(0);
  }, 60_000);
});

const iso = (ms: number) => new Date(ms).toISOString();
