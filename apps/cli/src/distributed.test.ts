import { randomBytes } from "node:crypto";
import { spawnCli } from "./test-cli.js";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "@hailuo/emulator";
import { QUEUES, removeAllQueues } from "@hailuo/queue";
import { readJournal } from "@hailuo/runner";
import { expectDocumented } from "./test-events.js";
import {
  decodeErrors,
  ffprobeFacts,
  holdableClock,
  makeTempDir,
  startTestEmulator,
  waitFor,
} from "@hailuo/test-utils";

// Two real worker processes and a real Redis server (.ci/run starts one when none answers);
// the emulator runs in this process so its counters outlive the killed worker.
const REDIS = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

describe("distributed runs on BullMQ", () => {
  let emu: Emulator;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  const prefix = `hailuo-test-${randomBytes(4).toString("hex")}`;
  // Held, no generation finishes: a worker is killed with its requests live however slow the machine.
  const gate = holdableClock();
  beforeAll(async () => {
    emu = await startTestEmulator({
      slots: 8,
      progressLatencyMs: 1500,
      render: "shared",
      clock: gate.clock,
    });
    tmp = await makeTempDir();
  });
  afterEach(() => gate.release());
  afterAll(async () => {
    await removeAllQueues({ redisUrl: REDIS, prefix });
    await emu.close();
    await tmp.cleanup();
  });

  const SCENES = 12;
  it("two workers share a 12-scene run; one is killed; one submit per scene-take; assemble runs once after its children", async () => {
    const tag = randomBytes(3).toString("hex");
    const file = join(tmp.dir, "dist.yaml");
    await writeFile(
      file,
      `name: dist\nscenes:\n${Array.from({ length: SCENES }, (_, i) => `  - id: s${String(i).padStart(2, "0")}\n    prompt: distributed ${tag} scene ${i}\n`).join("")}assemble:\n  transition: cut\nthumbnails: { preview: none }\n`,
    );
    const runDir = join(tmp.dir, "dist-run");
    const env = { FAL_EMULATOR_URL: emu.url };
    const before = emu.stats();

    const enqueue = spawnCli(
      ["run", file, "--redis", REDIS, "--prefix", prefix, "--out", runDir, "--concurrency", "3"],
      env,
    );
    expect(await enqueue.done).toBe(0);
    // Enqueueing the same run again adds nothing: job ids are the generations' stable keys.
    expect(
      await spawnCli(
        ["run", file, "--redis", REDIS, "--prefix", prefix, "--out", runDir, "--concurrency", "3"],
        env,
      ).done,
    ).toBe(0);

    const workerArgs = [
      "worker",
      "--redis",
      REDIS,
      "--prefix",
      prefix,
      "--concurrency",
      "2",
      "--lock-ms",
      "4000",
      "--retries",
      "2",
    ];
    // Held: every request sent stays live until worker A is dead.
    gate.hold();
    const a = spawnCli(workerArgs, env);
    const b = spawnCli(workerArgs, env);
    const journal = join(runDir, "journal.jsonl");
    // Kill worker A while it holds live requests and no submit is on the wire…
    const unfinishedByA = () => {
      const started = new Set(
        [...a.output().matchAll(/job (\S+): \S+ started/g)].map((m) => m[1]!),
      );
      for (const m of a.output().matchAll(/job (\S+): \S+ \(from /g)) started.delete(m[1]!);
      return started;
    };
    await waitFor(async () => {
      const { records } = await readJournal(journal);
      const submitted = records.filter((r) => r.t === "submitted").length;
      // …and one of A's own jobs (started, not finished; a job id ends with its generation's key)
      // has a live request, so B must take it over. (A job journaled done but not yet acknowledged
      // by A is no takeover of a live request.)
      const over = new Set(
        records.flatMap((r) => (r.t === "completed" || r.t === "done" ? [r.key] : [])),
      );
      const live = new Set(
        records.flatMap((r) => (r.t === "submitted" && !over.has(r.key) ? [r.key] : [])),
      );
      const takeover = [...unfinishedByA()].some((id) =>
        live.has(id.slice(id.lastIndexOf("-") + 1)),
      );
      // The account's concurrency (3) is out: B takes at most 2 jobs, so A has one of them.
      return (
        submitted >= 3 &&
        submitted === records.filter((r) => r.t === "submitting").length &&
        takeover
      );
    }, 60_000);
    const leftByA = unfinishedByA();
    a.child.kill("SIGKILL");
    expect(await a.done).toBe(null);
    gate.release();

    const redis = new Redis(REDIS, { maxRetriesPerRequest: null });
    const assembleQueue = new Queue(QUEUES.assemble, { connection: redis, prefix });
    const generateQueue = new Queue(QUEUES.generate, { connection: redis, prefix });
    try {
      await waitFor(
        async () => (await assembleQueue.getJobCounts("completed")).completed === 1,
        120_000,
      );
      const counts = await generateQueue.getJobCounts("completed", "failed", "active", "waiting");
      const why = (await generateQueue.getJobs(["failed"]))
        .map((j) => `${j.id}: ${j.failedReason}`)
        .join("; ");
      expect(
        counts,
        `failed jobs: ${why}\nworker B said:\n${b.output().slice(-3000)}`,
      ).toMatchObject({ completed: SCENES, failed: 0, active: 0, waiting: 0 });
      const [parent] = await assembleQueue.getJobs(["completed"]);
      const children = await generateQueue.getJobs(["completed"]);
      expect(parent!.attemptsMade).toBe(1);
      expect(parent!.processedOn!).toBeGreaterThanOrEqual(
        Math.max(...children.map((c) => c.finishedOn!)),
      );
    } finally {
      await assembleQueue.close();
      await generateQueue.close();
      redis.disconnect();
    }

    const after = emu.stats();
    expect(after.submits.total - before.submits.total).toBe(SCENES);
    const fresh = Object.entries(after.submits.byInput)
      .filter(([k]) => !(k in before.submits.byInput))
      .map(([, n]) => n);
    expect(fresh).toEqual(Array(SCENES).fill(1));
    // fal's account concurrency (3) held across both workers.
    expect(after.maxInProgress).toBeLessThanOrEqual(3);

    const report = JSON.parse(await readFile(join(runDir, "report.json"), "utf8"));
    expect(report.items.filter((i: { status: string }) => i.status === "done")).toHaveLength(
      SCENES,
    );
    for (const i of report.items) expect(await decodeErrors(join(runDir, i.file))).toBe("");
    // The bill: exactly the clips the report says were billed (this emulator served only this run).
    expect(after.billed.usd - before.billed.usd).toBeCloseTo(report.totals.billedUsd, 6);
    expect(report.totals.billedRequests).toBe(SCENES);
    for (const i of report.items.slice(0, 3))
      expect((await ffprobeFacts(join(runDir, i.file))).frames).toBe(144);
    const film = await ffprobeFacts(join(runDir, "film.mp4"));
    expect(film.durationS).toBeCloseTo(SCENES * 6, 0);
    expect((await stat(join(runDir, "index.html"))).size).toBeGreaterThan(1000);
    expect(`${a.output()}${b.output()}`.match(/assembled/g)).toHaveLength(1);
    // B took over a job A was killed in (its request live, or completed in the milliseconds
    // before the kill): never a new submit (the submit count above).
    const tookOver = [...b.output().matchAll(/job (\S+): \S+ \(from (\w+)\)/g)]
      .filter((m) => leftByA.has(m[1]!))
      .map((m) => m[2]);
    expect(tookOver.length, b.output()).toBeGreaterThan(0);
    expect(
      tookOver.some((from) => from === "live" || from === "completed"),
      b.output(),
    ).toBe(true);

    b.child.kill("SIGTERM");
    expect(await b.done).toBe(0);
  }, 180_000);

  it("distributed schedules are BullMQ job schedulers: a fire is enqueued by a worker and runs to a film", async () => {
    const tag = randomBytes(3).toString("hex");
    const jobsDir = join(tmp.dir, "jobs");
    await mkdir(join(jobsDir, "tick"), { recursive: true });
    await writeFile(
      join(jobsDir, "tick", "job.yaml"),
      `schedule: "*/2 * * * * *"\ntimezone: UTC\nmanifest:\n  name: tick\n  scenes:\n    - prompt: "tick ${tag} one"\n    - prompt: "tick ${tag} two"\n  assemble: true\n  thumbnails: { preview: none }\noutput: ../../tick-out\n`,
    );
    const env = { FAL_EMULATOR_URL: emu.url };
    const before = emu.stats();
    const worker = spawnCli(
      ["worker", "--redis", REDIS, "--prefix", prefix, "--lock-ms", "2000"],
      env,
    );
    const register = spawnCli(["schedule", jobsDir, "--redis", REDIS, "--prefix", prefix], env);
    expect(await register.done).toBe(0);
    expect(register.output()).toContain("registered as a BullMQ job scheduler");
    const redis = new Redis(REDIS, { maxRetriesPerRequest: null });
    const schedule = new Queue(QUEUES.schedule, { connection: redis, prefix });
    const assemble = new Queue(QUEUES.assemble, { connection: redis, prefix });
    try {
      expect((await schedule.getJobSchedulers()).map((j) => j.key)).toEqual(["tick"]);
      const history = join(tmp.dir, "tick-out", "history.jsonl");
      await waitFor(
        async () => (await readFile(history, "utf8").catch(() => "")).includes('"enqueued"'),
        30_000,
      );
      await schedule.removeJobScheduler("tick");
      // Fires enqueue runs; a fire during a run is skipped (no run folder) and a run's end is recorded too.
      const enqueued = async () =>
        (await readFile(history, "utf8"))
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as { status: string; runDir?: string })
          .filter((r) => r.status === "enqueued")
          .map((r) => r.runDir!);
      const runDir = (await enqueued())[0]!;
      await waitFor(
        async () => (await stat(join(runDir, "film.mp4")).catch(() => undefined)) !== undefined,
        60_000,
      );
      // Fires in one minute share a run folder and so the same job ids: each scene is paid once per
      // run folder, however often the scheduler fired (a minute boundary may start a second folder).
      // Every run the scheduler enqueued has been assembled (nothing waits in either queue).
      const idle = async (q: Queue) =>
        Object.values(
          await q.getJobCounts("active", "waiting", "waiting-children", "delayed", "prioritized"),
        ).every((n) => n === 0);
      await waitFor(async () => (await idle(schedule)) && (await idle(assemble)), 60_000);
      const runDirs = new Set(await enqueued());
      for (const dir of runDirs)
        await waitFor(
          async () => (await stat(join(dir, "film.mp4")).catch(() => undefined)) !== undefined,
          60_000,
        );
      const fresh = Object.entries(emu.stats().submits.byInput)
        .filter(([k]) => !(k in before.submits.byInput))
        .map(([, n]) => n);
      expect(fresh).toEqual([runDirs.size, runDirs.size]);
      expect((await assemble.getJobCounts("completed")).completed).toBeGreaterThanOrEqual(1);
    } finally {
      await schedule.close();
      await assemble.close();
      redis.disconnect();
      worker.child.kill("SIGTERM");
      await worker.done;
    }
  }, 120_000);

  it("redis mode says what it does: Redis down is one line and exit 2; --wait shows progress and stops on one Ctrl-C; queue ls and cancel", async () => {
    const down = spawnCli(["worker", "--redis", "redis://127.0.0.1:1"], {});
    expect(await down.done).toBe(2);
    expect(down.output()).toContain("cannot reach Redis at redis://127.0.0.1:1");
    expect(down.output()).not.toMatch(/\[ioredis\]|\n\s+at /);

    const admin = `${prefix}-admin`;
    const file = join(tmp.dir, "admin.yaml");
    await writeFile(
      file,
      `name: admin\nscenes:\n  - prompt: queued one\n  - prompt: queued two\n  - prompt: queued three\n`,
    );
    const runDir = join(tmp.dir, "admin-run");
    // No worker runs: the run waits in the queue, and --wait says so until Ctrl-C.
    const wait = spawnCli(
      ["run", file, "--redis", REDIS, "--prefix", admin, "--out", runDir, "--wait"],
      { FAL_EMULATOR_URL: emu.url },
    );
    await waitFor(() => wait.output().includes("0 done, 0 failed, 3 to go; $0.00 billed"), 15_000);
    wait.child.kill("SIGINT");
    expect(await wait.done).toBe(130);
    expect(wait.output()).toContain("stopped waiting; the run goes on in the workers");

    const ls = spawnCli(["queue", "ls", "--redis", REDIS, "--prefix", admin, "--json"], {});
    expect(await ls.done).toBe(0);
    const [listed] = expectDocumented(ls.output());
    expect(listed).toMatchObject({
      type: "queue",
      runs: [
        {
          runDir,
          state: "waiting-children",
          generations: { finished: 0, remaining: 3, failed: 0 },
        },
      ],
      schedules: [],
    });
    const cancel = spawnCli(["queue", "cancel", runDir, "--redis", REDIS, "--prefix", admin], {});
    expect(await cancel.done).toBe(0);
    expect(cancel.output()).toContain(
      "3 waiting generation(s) removed (nothing paid for them); the run is out of the queue",
    );
    const after = spawnCli(["queue", "ls", "--redis", REDIS, "--prefix", admin], {});
    expect(await after.done).toBe(0);
    expect(after.output().trim()).toBe("nothing queued");
    // The folder is no longer the queue's: its journal says the distributed run finished.
    expect((await readJournal(join(runDir, "journal.jsonl"))).records.at(-1)).toMatchObject({
      t: "finished",
    });
    await removeAllQueues({ redisUrl: REDIS, prefix: admin });
  }, 120_000);
});
