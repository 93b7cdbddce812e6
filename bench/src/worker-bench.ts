// Queue workers at scale: what one generate job costs in a run of 100 clips and in a run of 10,000
// (the runner's `createItemWorker`, the code a BullMQ worker calls per job). Every job re-checks a
// finished clip (as a redelivered job does) after another worker has appended to the journal.
// Goal: the same cost per job whatever the run's size. For scale, the old way's cost is shown
// too: replaying the whole journal for every job.
import { createLocalStore } from "@hailuo/store";
import { appendFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHailuoClient } from "@hailuo/core";
import { AnimaticRenderer, createEmulator } from "@hailuo/emulator";
import { createItemWorker, journalPath, readJournal } from "@hailuo/runner";
import { doneRunFolder } from "./run-folders.js";

const SMALL = 100;
const BIG = Number(process.env.BENCH_BIG_SCENES ?? 10_000);
const JOBS = Number(process.env.BENCH_JOBS ?? 1000);

const cacheDir = join(tmpdir(), "hailuo-bench-cache");
const emu = await createEmulator({ slots: 4, progressLatencyMs: 50, render: "shared", cacheDir });
const root = await mkdtemp(join(tmpdir(), "hailuo-worker-bench-"));
try {
  const clip = await new AnimaticRenderer(cacheDir).render({
    prompt: "worker bench",
    durationS: 6,
  });
  /** Milliseconds per job over JOBS jobs, each after one record appended by "another worker". */
  const perJob = async (n: number): Promise<number> => {
    const dir = join(root, `run-${n}`);
    const keys = await doneRunFolder(dir, n, clip, emu.url);
    const store = createLocalStore(dir);
    const worker = createItemWorker({
      client: createHailuoClient({ emulatorUrl: emu.url }),
      backend: { kind: "emulator", url: emu.url },
      signal: new AbortController().signal,
    });
    try {
      await worker.run(store, keys[0]!); // the worker's first job in a folder reads the journal once
      const journal = journalPath(dir);
      // What another worker appends: the record of a clip it finished.
      const records = (await readFile(journal, "utf8"))
        .trim()
        .split("\n")
        .filter((line) => line.startsWith('{"t":"done"'));
      const t0 = performance.now();
      for (let j = 0; j < JOBS; j++) {
        const key = keys[(j * 7919) % keys.length]!;
        await appendFile(journal, `${records[(j * 31) % records.length]}\n`);
        const r = await worker.run(store, key);
        if (r.outcome === "failed") throw new Error(`job ${key} failed: ${r.error?.message}`);
      }
      return (performance.now() - t0) / JOBS;
    } finally {
      await worker.close();
    }
  };
  const small = await perJob(SMALL);
  const big = await perJob(BIG);
  const t0 = performance.now();
  for (let j = 0; j < 20; j++) await readJournal(journalPath(join(root, `run-${BIG}`)));
  const replay = (performance.now() - t0) / 20;
  console.log(
    `worker bench: ${JOBS} generate jobs each (finished clips re-checked), another worker appending between jobs`,
  );
  console.log(
    `  per job, ${BIG}-clip run vs ${SMALL}-clip run  ${(big / small).toFixed(2)}×  (${big.toFixed(2)} ms vs ${small.toFixed(2)} ms)  goal ≈ 1× (independent of run size)`,
  );
  console.log(
    `  (the old way, reading the whole journal per job at ${BIG}: ${replay.toFixed(1)} ms per job before any work)`,
  );
} finally {
  await emu.close();
  await rm(root, { recursive: true, force: true });
}
