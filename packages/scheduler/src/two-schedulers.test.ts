import { fork, type ChildProcess } from "node:child_process";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Emulator } from "@hailuo/emulator";
import {
  decodeErrors,
  holdableClock,
  makeTempDir,
  startTestEmulator,
  waitFor,
} from "@hailuo/test-utils";
import lockfile from "proper-lockfile";
import { createHailuoClient } from "@hailuo/core";
import { journalPath, readJournal, runLockHeld, runManifest } from "@hailuo/runner";
import { readHistory, type HistoryRecord } from "./index.js";

// Two schedulers (and a `--once`) as separate processes on one jobs folder, each on a manual
// clock this test moves, against one emulator whose clock the test can hold: while held, no
// request finishes, so a run lasts as long as the test wants (longer than the job's interval).

const CHILD = join(import.meta.dirname, "test-scheduler-process.mjs");
const T0 = Date.UTC(2026, 10, 24, 6, 59, 30);
// Two 6 s scenes at $0.045/s: $0.54 a run; the day has room for one run and not two.
const PER_DAY_USD = 0.8;
// The scheduler processes' run-lock stale time: a killed holder's lock is taken over after it.
const LOCK_STALE_MS = 2000;

/** A scheduler process: `ask` sends one request and resolves with its answer; `logs` so far. */
interface SchedulerProcess {
  child: ChildProcess;
  logs: string[];
  ask<T = unknown>(type: string, extra?: Record<string, unknown>): Promise<T>;
}

async function startSchedulerProcess(
  jobsDir: string,
  emulatorUrl: string,
  startMs: number,
): Promise<SchedulerProcess> {
  const child = fork(CHILD, [jobsDir, String(startMs)], {
    env: {
      ...process.env,
      FAL_EMULATOR_URL: emulatorUrl,
      FAL_KEY: undefined,
      HAILUO_LOCK_STALE_MS: String(LOCK_STALE_MS),
    },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const logs: string[] = [];
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  const ready = new Promise<void>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`scheduler process exited with ${code}`)));
    child.on(
      "message",
      (m: { ready?: boolean; log?: string; id?: number; value?: unknown; error?: string }) => {
        if (m.ready) resolve();
        if (m.log) logs.push(m.log);
        if (m.id === undefined) return;
        const w = waiting.get(m.id)!;
        waiting.delete(m.id);
        if (m.error) w.reject(new Error(m.error));
        else w.resolve(m.value);
      },
    );
  });
  await ready;
  return {
    child,
    logs,
    ask: <T>(type: string, extra: Record<string, unknown> = {}) =>
      new Promise<T>((resolve, reject) => {
        const id = nextId++;
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ id, type, ...extra });
      }),
  };
}

let tmp: Awaited<ReturnType<typeof makeTempDir>>;
let emu: Emulator;
let gate: ReturnType<typeof holdableClock>;
const children: ChildProcess[] = [];
beforeEach(async () => {
  tmp = await makeTempDir();
  gate = holdableClock();
  emu = await startTestEmulator({ clock: gate.clock, render: "shared", slots: 4 });
});
afterEach(async () => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
  await emu.close();
  await tmp.cleanup();
});

/** A jobs folder with one job every minute: two 6 s scenes, `per_day` with room for one run. */
async function jobsFolder(): Promise<{ jobsDir: string; outputRoot: string }> {
  const jobsDir = join(tmp.dir, "jobs");
  await mkdir(join(jobsDir, "minutely"), { recursive: true });
  await writeFile(
    join(jobsDir, "minutely", "job.yaml"),
    `schedule: "* * * * *"\nbudget: { per_day: ${PER_DAY_USD} }\noutput: ../../out\nmanifest:\n  name: minutely\n  scenes:\n    - { id: a, prompt: "Harbour at dawn", duration: 6 }\n    - { id: b, prompt: "Harbour at dusk", duration: 6 }\n`,
  );
  return { jobsDir, outputRoot: join(tmp.dir, "out") };
}

async function spawnSchedulers(
  jobsDir: string,
  count: number,
  startMs = T0,
): Promise<SchedulerProcess[]> {
  const procs = await Promise.all(
    Array.from({ length: count }, () => startSchedulerProcess(jobsDir, emu.url, startMs)),
  );
  children.push(...procs.map((p) => p.child));
  return procs;
}

/** Every run folder's report, the emulator's bill and what the history says each run spent. */
async function moneyFacts(outputRoot: string, billedBeforeUsd: number) {
  const runDirs = (await readdir(outputRoot))
    .filter((d) => /^\d{4}-\d{2}-\d{2}_\d{4}/.test(d))
    .map((d) => join(outputRoot, d));
  // A run refused before its first submit leaves no report (and spent nothing).
  const reports = await Promise.all(
    runDirs.map(async (d) => {
      const text = await readFile(join(d, "report.json"), "utf8").catch(() => "null");
      return (
        (JSON.parse(text) as {
          totals: { billedUsd: number };
          items: { file: string }[];
        } | null) ?? { totals: { billedUsd: 0 }, items: [] }
      );
    }),
  );
  return {
    runDirs,
    reports,
    billedUsd: emu.stats().billed.usd - billedBeforeUsd,
    reportedUsd: reports.reduce((s, r) => s + r.totals.billedUsd, 0),
  };
}

/** Every request the emulator took has finished (and billed). */
const emulatorIdle = () => emu.stats().completed >= emu.stats().submits.total;

describe("two scheduler processes on one jobs folder", () => {
  it("never overlap a job's runs (the fire during a run is skipped naming the holder) and stay within per_day", async () => {
    const { jobsDir, outputRoot } = await jobsFolder();
    const procs = await spawnSchedulers(jobsDir, 2);
    for (const p of procs) await p.ask("start");
    await waitFor(async () =>
      (await Promise.all(procs.map((p) => p.ask<number>("pending")))).every((n) => n > 0),
    );
    const billedBefore = emu.stats().billed.usd;

    // 07:00: one process takes the fire; its run stays open (the emulator is held) past 07:01.
    gate.hold();
    await Promise.all(procs.map((p) => p.ask("advance", { ms: 30_000 })));
    await waitFor(
      () =>
        emu.stats().submits.total === 2 &&
        procs.some((p) => p.logs.some((l) => l.includes("already fired by another scheduler"))),
    );
    await Promise.all(procs.map((p) => p.ask("advance", { ms: 60_000 })));
    // Both processes have decided about 07:01.
    await waitFor(() => procs.every((p) => p.logs.some((l) => /07:01|_0701/.test(l))), 20_000);
    gate.release();
    await waitFor(
      async () =>
        emulatorIdle() &&
        (await Promise.all(procs.map((p) => p.ask<string[]>("busy")))).every((b) => b.length === 0),
      30_000,
    );
    await Promise.all(procs.map((p) => p.ask("stop")));

    const history = await readHistory(outputRoot);
    const at0701 = history.filter((h) => h.fireAt === "2026-11-24T07:01:00.000Z");
    const runner = procs.find((p) =>
      p.logs.some((l) => l.includes("run 2026-11-24_0700 started")),
    )!;
    expect(at0701.map((h: HistoryRecord) => [h.status, h.reason])).toEqual([
      ["skipped", `still running (pid ${runner.child.pid}, fired 2026-11-24T07:00:00.000Z)`],
    ]);

    const facts = await moneyFacts(outputRoot, billedBefore);
    expect(facts.runDirs.map((d) => d.slice(-15))).toEqual(["2026-11-24_0700"]);
    // One submit per scene-take, the bill equals the runs' reports, every clip decodes.
    expect(Object.values(emu.stats().submits.byInput)).toEqual([1, 1]);
    expect(facts.billedUsd).toBeCloseTo(facts.reportedUsd, 6);
    for (const [i, r] of facts.reports.entries())
      for (const item of r.items)
        expect(await decodeErrors(join(facts.runDirs[i]!, item.file))).toBe("");
    expect(facts.billedUsd).toBeLessThanOrEqual(PER_DAY_USD);
  }, 60_000);

  it("refuses a `--once` of the job while another process runs it", async () => {
    const { jobsDir, outputRoot } = await jobsFolder();
    const [scheduler] = await spawnSchedulers(jobsDir, 1);
    const [once] = await spawnSchedulers(jobsDir, 1, T0 + 40_000);
    await scheduler!.ask("start");
    await waitFor(async () => (await scheduler!.ask<number>("pending")) > 0);
    const billedBefore = emu.stats().billed.usd;
    gate.hold();
    await scheduler!.ask("advance", { ms: 30_000 });
    await waitFor(() => emu.stats().submits.total === 2);

    let answered = false;
    const asked = once!
      .ask<HistoryRecord | null>("once", { job: "minutely" })
      .finally(() => (answered = true));
    // Refused at once; a `--once` that ran instead would submit its scenes (and wait on the hold).
    await waitFor(() => answered || emu.stats().submits.total > 2);
    expect(emu.stats().submits.total).toBe(2);
    gate.release();
    expect(await asked).toMatchObject({
      status: "skipped",
      reason: `still running (pid ${scheduler!.child.pid}, fired 2026-11-24T07:00:00.000Z)`,
    });

    await waitFor(
      async () => emulatorIdle() && (await scheduler!.ask<string[]>("busy")).length === 0,
      30_000,
    );
    await scheduler!.ask("stop");
    const facts = await moneyFacts(outputRoot, billedBefore);
    expect(facts.runDirs.map((d) => d.slice(-15))).toEqual(["2026-11-24_0700"]);
    expect(Object.values(emu.stats().submits.byInput)).toEqual([1, 1]);
    expect(facts.billedUsd).toBeCloseTo(facts.reportedUsd, 6);
    for (const [i, r] of facts.reports.entries())
      for (const item of r.items)
        expect(await decodeErrors(join(facts.runDirs[i]!, item.file))).toBe("");
  }, 60_000);

  it("count a run whose process was killed mid-run at what it has in flight: the next fire cannot pass per_day", async () => {
    const { jobsDir, outputRoot } = await jobsFolder();
    const [a, b] = await spawnSchedulers(jobsDir, 2);
    // Only A is started: it takes 07:00; B fires by hand at 07:01 once A is dead.
    await a!.ask("start");
    await waitFor(async () => (await a!.ask<number>("pending")) > 0);
    const billedBefore = emu.stats().billed.usd;
    gate.hold();
    await a!.ask("advance", { ms: 30_000 });
    await waitFor(() => emu.stats().submits.total === 2);
    const runDir = join(outputRoot, "2026-11-24_0700");
    await waitFor(
      async () =>
        (await readJournal(journalPath(runDir))).records.filter((r) => r.t === "submitted")
          .length === 2,
    );
    a!.child.kill("SIGKILL");
    // The dead process's locks go stale (nobody refreshes them), so the next fire is not a skip.
    const locks = join(outputRoot, ".locks");
    await waitFor(
      async () =>
        !(await lockfile.check(join(locks, "minutely.run"), {
          lockfilePath: join(locks, "minutely.run.lock"),
          realpath: false,
          stale: LOCK_STALE_MS,
        })) && !(await runLockHeld(runDir)),
      20_000,
    );

    await b!.ask("advance", { ms: 90_000 });
    const rec = await b!.ask<HistoryRecord | null>("once", { job: "minutely" });
    expect(rec).toMatchObject({ status: "failed" });
    expect(rec!.reason).toMatch(/over the budget of \$0\.26; nothing was submitted/);
    expect(emu.stats().submits.total).toBe(2);
    const settled = (await readHistory(outputRoot)).find((h) => h.status === "interrupted");
    expect(settled).toMatchObject({ runDir, spentUsd: 0.54 });

    // The paid clips of the killed run are collected by a resume; then the money adds up.
    gate.release();
    await waitFor(emulatorIdle, 30_000);
    const resumed = await runManifest({
      runDir,
      client: createHailuoClient({ emulatorUrl: emu.url }),
    });
    expect(resumed.exitCode).toBe(0);
    const facts = await moneyFacts(outputRoot, billedBefore);
    expect(Object.values(emu.stats().submits.byInput)).toEqual([1, 1]);
    expect(facts.billedUsd).toBeCloseTo(facts.reportedUsd, 6);
    for (const [i, r] of facts.reports.entries())
      for (const item of r.items)
        expect(await decodeErrors(join(facts.runDirs[i]!, item.file))).toBe("");
    expect(facts.billedUsd).toBeLessThanOrEqual(PER_DAY_USD);
  }, 60_000);
});
