import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import { createManualClock } from "@hailuo/shared";
import { makeTempDir, startTestEmulator, waitFor } from "@hailuo/test-utils";
import {
  appendHistory,
  createRunExecutor,
  createScheduler,
  parseJobDefinition,
  readHistory,
  spentOnDay,
  writeLastFire,
  type HistoryRecord,
  type JobDefinition,
  type JobExecutor,
  type RunOutcome,
} from "./index.js";

let tmp: Awaited<ReturnType<typeof makeTempDir>>;
beforeEach(async () => {
  tmp = await makeTempDir();
});
afterEach(() => tmp.cleanup());

const T0 = Date.UTC(2026, 10, 24, 6, 59, 30);

function job(extra = ""): JobDefinition {
  return parseJobDefinition(
    `schedule: "* * * * *"\nmanifest: ../m.yaml\noutput: ${join(tmp.dir, "out")}\nkeep: 2\n${extra}`,
    join(tmp.dir, "jobs", "minutely", "job.yaml"),
  );
}

// Stand-in for the runner in the time-driven tests: it lets a test hold a run open while the
// fake clock moves. The real executor is tested against the emulator below.
function controllableExecutor() {
  const calls: { fireAt: Date; runDir: string; finish: (o?: Partial<RunOutcome>) => void }[] = [];
  const execute: JobExecutor = (_job, { fireAt, runDir }) =>
    new Promise<RunOutcome>((resolve) => {
      void mkdir(runDir, { recursive: true }).then(() =>
        calls.push({
          fireAt,
          runDir,
          finish: (o = {}) => resolve({ status: "ok", exitCode: 0, spentUsd: 0.27, ...o }),
        }),
      );
    });
  return { calls, execute };
}

describe("job definitions", () => {
  it("parse with time zone, budget, policy, and report every problem with its line", () => {
    const j = parseJobDefinition(
      `schedule:\n  cron: "0 7 * * *"\n  timezone: Europe/Berlin\nmanifest: ../list.csv\nbudget: { per_run: 2, per_day: 5 }\nmissed: catch-up\nthumbnails: { preview: none, sheet_columns: 3 }\n`,
      "/x/jobs/daily/job.yaml",
    );
    expect(j).toMatchObject({
      name: "daily",
      cron: "0 7 * * *",
      timeZone: "Europe/Berlin",
      manifest: { file: "/x/jobs/list.csv" },
      budget: { perRunUsd: 2, perDayUsd: 5 },
      missed: "catch-up",
      outputRoot: "/x/runs/daily",
      keep: 14,
      thumbnails: { posterAt: "auto", sheetColumns: 3, preview: "none" },
    });
    let problems: string[] = [];
    try {
      parseJobDefinition(
        `schedule: "61 * * * *"\ntimezone: Mars/Olympus\nmanifset: x.yaml\nmissed: later\n`,
        "/x/jobs/bad/job.yaml",
      );
    } catch (e) {
      problems = (
        e as { problems: { line?: number; field: string; message: string }[] }
      ).problems.map((p) => `${p.line}: ${p.field}: ${p.message}`);
    }
    expect(problems).toEqual([
      '3: manifset: unknown key; did you mean "manifest"?',
      expect.stringMatching(/^1: schedule: invalid cron expression "61 \* \* \* \*"/),
      '2: timezone: unknown time zone "Mars/Olympus" (use an IANA name like Europe/Berlin)',
      "1: manifest: a job needs manifest: (a path relative to the job file, or an inline manifest)",
      '4: missed: missed must be skip or catch-up, got "later"',
    ]);
  });
});

describe("the day's spend (spentOnDay)", () => {
  const day = new Date("2026-11-24T12:00:00Z");
  const r = (
    fireAt: string,
    status: HistoryRecord["status"],
    usd: Partial<HistoryRecord> = {},
  ): HistoryRecord => ({
    job: "j",
    fireAt: `2026-11-${fireAt}:00.000Z`,
    status,
    runDir: `/runs/${fireAt}`,
    pid: 1,
    ...usd,
  });
  it.each([
    [
      "a finished run counts what it spent",
      [r("24T07:00", "started", { reservedUsd: 0.8 }), r("24T07:00", "ok", { spentUsd: 0.54 })],
      0.54,
    ],
    [
      "a run in flight counts its reservation",
      [r("24T07:00", "started", { reservedUsd: 0.8 })],
      0.8,
    ],
    [
      "a settled crash, then the run's late end: the latest end counts",
      [
        r("24T07:00", "started", { reservedUsd: 0.8 }),
        r("24T07:00", "interrupted", { spentUsd: 0.54 }),
        r("24T07:00", "ok", { spentUsd: 0.27 }),
      ],
      0.27,
    ],
    [
      "skips, and runs of another day, count nothing",
      [
        r("24T07:01", "skipped"),
        r("23T07:00", "started", { reservedUsd: 0.8 }),
        r("25T07:00", "ok", { spentUsd: 0.54 }),
      ],
      0,
    ],
    [
      "a run in flight beside finished ones",
      [
        r("24T07:00", "started", { reservedUsd: 0.5 }),
        r("24T07:00", "failed", { spentUsd: 0.27 }),
        r("24T08:00", "started", { reservedUsd: 0.53 }),
      ],
      0.8,
    ],
  ])("%s", (_name, history, usd) => {
    expect(spentOnDay(history as HistoryRecord[], day, "UTC")).toBeCloseTo(usd as number, 9);
  });
});

describe("scheduler on a fake clock", () => {
  it("fires on schedule, never overlaps a job with itself, writes history and prunes old runs", async () => {
    const clock = createManualClock(T0);
    const { calls, execute } = controllableExecutor();
    const j = job();
    const ac = new AbortController();
    const scheduler = createScheduler({ jobs: [j], execute, clock });
    const done = scheduler.start(ac.signal);
    await waitFor(() => clock.pending() > 0);
    await clock.advance(30_000); // 07:00
    await waitFor(() => calls.length === 1);
    expect(calls[0]!.fireAt.toISOString()).toBe("2026-11-24T07:00:00.000Z");
    await clock.advance(60_000); // 07:01 while 07:00 still runs
    await waitFor(async () =>
      (await readHistory(j.outputRoot)).some((h) => h.status === "skipped"),
    );
    expect(calls).toHaveLength(1);
    calls[0]!.finish();
    await waitFor(
      async () =>
        (await readHistory(j.outputRoot)).some((h) => h.status === "ok") &&
        scheduler.busy().length === 0,
    );
    for (let m = 2; m <= 4; m++) {
      await waitFor(() => clock.pending() > 0);
      await clock.advance(60_000);
      await waitFor(() => calls.length === m);
      calls[m - 1]!.finish(m === 3 ? { status: "failed", exitCode: 1 } : {});
      // The fire is over (history written, lock released) before the clock moves on.
      await waitFor(
        async () =>
          (await readHistory(j.outputRoot)).filter((h) => h.status !== "started").length ===
            m + 1 && scheduler.busy().length === 0,
      );
    }
    ac.abort();
    await done;
    const history = await readHistory(j.outputRoot);
    expect(history.map((h) => [h.fireAt.slice(11, 16), h.status])).toEqual([
      ["07:00", "started"],
      ["07:01", "skipped"],
      ["07:00", "ok"],
      ["07:02", "started"],
      ["07:02", "ok"],
      ["07:03", "started"],
      ["07:03", "failed"],
      ["07:04", "started"],
      ["07:04", "ok"],
    ]);
    expect(history[1]!.reason).toBe(
      "still running (pid " + process.pid + ", fired 2026-11-24T07:00:00.000Z)",
    );
    // keep: 2 → only the two newest finished runs remain.
    expect((await readdir(j.outputRoot)).filter((d) => d.startsWith("2026")).sort()).toEqual([
      "2026-11-24_0703",
      "2026-11-24_0704",
    ]);
  });

  it("skips missed runs, or catches up once, per policy", async () => {
    for (const policy of ["skip", "catch-up"] as const) {
      const j = {
        ...job(`missed: ${policy}`),
        cron: "0 * * * *",
        outputRoot: join(tmp.dir, policy),
      };
      await writeLastFire(j.outputRoot, new Date(T0 - 3 * 3600_000)); // stopped since 03:59:30
      const clock = createManualClock(T0);
      const { calls, execute } = controllableExecutor();
      const ac = new AbortController();
      const done = createScheduler({ jobs: [j], execute, clock }).start(ac.signal);
      await waitFor(() => clock.pending() > 0);
      if (policy === "catch-up") {
        await waitFor(() => calls.length === 1);
        expect(calls[0]!.fireAt.toISOString()).toBe("2026-11-24T06:00:00.000Z");
        calls[0]!.finish();
      }
      ac.abort();
      await done;
      const h = await readHistory(j.outputRoot);
      expect(h.filter((r) => r.status === "missed").map((r) => r.fireAt.slice(11, 16))).toEqual(
        policy === "skip" ? ["04:00", "05:00", "06:00"] : ["04:00", "05:00"],
      );
      expect(calls).toHaveLength(policy === "skip" ? 0 : 1);
    }
  });

  it("lets only one of two schedulers on shared storage fire, and respects the daily budget", async () => {
    const clock = createManualClock(T0);
    const j = job("budget: { per_day: 0.5 }");
    const a = controllableExecutor();
    const b = controllableExecutor();
    const ac = new AbortController();
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    const schedulers = [
      createScheduler({ jobs: [j], execute: a.execute, clock, log }),
      createScheduler({ jobs: [j], execute: b.execute, clock, log }),
    ];
    const runs = schedulers.map((sch) => sch.start(ac.signal));
    await waitFor(() => clock.pending() >= 2);
    await clock.advance(30_000);
    // Both schedulers have tried this fire: one runs it, the other found it taken.
    await waitFor(
      () =>
        a.calls.length + b.calls.length === 1 &&
        lines.some((l) => l.includes("already fired by another scheduler")),
    );
    expect(a.calls.length + b.calls.length).toBe(1);
    (a.calls[0] ?? b.calls[0])!.finish({ spentUsd: 0.54 });
    await waitFor(
      async () =>
        (await readHistory(j.outputRoot)).some((h) => h.status === "ok") &&
        schedulers.every((sch) => sch.busy().length === 0),
    );
    // $0.54 spent today against $0.50 a day: the next fire is skipped, nothing runs.
    await waitFor(() => clock.pending() >= 2);
    await clock.advance(60_000);
    await waitFor(async () =>
      (await readHistory(j.outputRoot)).some((h) => h.reason?.includes("daily budget")),
    );
    expect(a.calls.length + b.calls.length).toBe(1);
    ac.abort();
    await Promise.all(runs);
  });
});

describe("a real scheduled run", () => {
  it("runs a job with an inline manifest against the emulator: film, page, history with the spend", async () => {
    const emu = await startTestEmulator({ render: "shared" });
    try {
      const dir = join(tmp.dir, "jobs", "recap");
      await mkdir(dir, { recursive: true });
      const file = join(dir, "job.yaml");
      await writeFile(
        file,
        `schedule: "30 17 * * 5"\nmanifest:\n  name: recap\n  scenes:\n    - prompt: "Recap for {{weekday}} {{date}}"\n    - prompt: "See you next week"\n  assemble:\n    transition: fade:0.5\noutput: ../../out\n`,
      );
      const j = parseJobDefinition(await readFile(file, "utf8"), file);
      const scheduler = createScheduler({
        jobs: [j],
        execute: createRunExecutor({ client: createHailuoClient({ emulatorUrl: emu.url }) }),
      });
      const rec = await scheduler.runNow("recap", new AbortController().signal);
      expect(rec).toMatchObject({ status: "ok", exitCode: 0, spentUsd: 0.54 });
      const files = await readdir(rec!.runDir!);
      expect(files).toEqual(
        expect.arrayContaining(["film.mp4", "index.html", "report.csv", "journal.jsonl"]),
      );
      expect((await readHistory(j.outputRoot)).map((h) => h.status)).toEqual(["started", "ok"]);
      await appendHistory(j.outputRoot, {
        job: "recap",
        fireAt: new Date().toISOString(),
        status: "skipped",
        pid: 1,
      });
      expect(scheduler.upcoming()[0]!.next!.getUTCDay()).toBe(5);
    } finally {
      await emu.close();
    }
  });
});
