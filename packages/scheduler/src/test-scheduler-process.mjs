// A scheduler in a process of its own, as `hailuo schedule` runs it, on a manual clock that the
// test moves over IPC, against the emulator at FAL_EMULATOR_URL. Two of these on one jobs folder
// are two schedulers on one machine. Replies to each request `{ id, ... }` with `{ id, value }`;
// every log line goes to the parent as `{ log }`.
import { createHailuoClient } from "@hailuo/core";
import { createManualClock } from "@hailuo/shared";

// The "before" measurement points this at an older build of the package.
const scheduler = await import(process.env.HAILUO_SCHEDULER_MODULE || "@hailuo/scheduler");
const [jobsDir, startMs] = process.argv.slice(2);
const clock = createManualClock(Number(startMs));
const jobs = await scheduler.loadJobs(jobsDir);
const client = createHailuoClient({ emulatorUrl: process.env.FAL_EMULATOR_URL });
const instance = scheduler.createScheduler({
  jobs,
  execute: scheduler.createRunExecutor({ client, media: false }),
  clock,
  log: (line) => process.send({ log: line }),
  // A short stale time lets a test see a killed process's lock taken over within seconds.
  lockStaleMs: Number(process.env.HAILUO_LOCK_STALE_MS) || undefined,
});
const ac = new AbortController();
let running = Promise.resolve();

const handlers = {
  start: () => {
    running = instance.start(ac.signal);
  },
  pending: () => clock.pending(),
  advance: ({ ms }) => clock.advance(ms),
  busy: () => instance.busy(),
  once: ({ job }) => instance.runNow(job, ac.signal).then((rec) => rec ?? null),
  stop: async () => {
    ac.abort();
    await running;
  },
};

process.on("message", async (m) => {
  try {
    process.send({ id: m.id, value: await handlers[m.type](m) });
  } catch (error) {
    process.send({ id: m.id, error: String(error?.stack ?? error) });
  }
});
process.send({ ready: true });
