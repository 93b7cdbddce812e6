import { stat } from "node:fs/promises";
import { join } from "node:path";
import type { HailuoClient } from "@hailuo/core";
import type { Manifest } from "@hailuo/manifest";
import { HailuoError, readJsonlFrom } from "@hailuo/shared";
import { clipIntact } from "./clip-file.js";
import type { RunEvent } from "./events.js";
import type { ItemOutcome } from "./item-context.js";
import { processItem } from "./item-step.js";
import { JournalStore, readJournal, journalPath, type StoredRecord } from "./journal-store.js";
import { planRun, type PlanItem } from "./plan.js";
import { writeReports, type RunReport } from "./report.js";
import { type Backend, checkBackend, notARun, readRunFile, type RunFile } from "./run-folder.js";
import { runLockHeld } from "./run-lock.js";
import { buildReport } from "./run-report.js";
import { newItemState, replayJournal, type ItemState } from "./run-state.js";

/** Options of `createItemWorker`. */
export interface ItemWorkerOptions {
  client: HailuoClient;
  /** Where `client` sends requests; a run recorded against another backend is refused. */
  backend?: Backend;
  /** Stops every item in flight (they stay resumable). */
  signal: AbortSignal;
  emit?: (event: RunEvent) => void;
  /** @default 3 */
  retries?: number;
  retryBaseDelayMs?: number;
  /** The run's budget, shared by every worker (Redis): asked before each submit. @default no budget */
  budgetFor?: (
    runDir: string,
    required: boolean,
  ) => {
    reserve(usd: number, key: string): Promise<boolean>;
    release(usd: number, key: string): Promise<void>;
  };
}

/** How one generation ended in a worker, and why when it failed. */
export interface WorkerItemResult {
  outcome: ItemOutcome;
  sceneId: string;
  take: number;
  /** Where it stood before: "new", "live" (re-attached), "completed", … */
  from: string;
  file?: string;
  error?: { code: string; message: string };
}

/** The runner's one entry for queue workers: a generation of a run folder, and a run's end. */
export interface ItemWorker {
  /** Runs one generation from wherever the folder's journal left it. Throws a non-retryable HailuoError for a job that must not run. */
  run(runDir: string, key: string): Promise<WorkerItemResult>;
  /** Writes the run's reports and marks the distributed run finished (the folder may run locally again). */
  finish(runDir: string): Promise<{ manifest: Manifest; report: RunReport }>;
  /** Closes the journals it opened. */
  close(): Promise<void>;
}

/**
 * Runs single generations of run folders for queue workers with the same item step, journal and
 * ledger as a local run, so a job taken over from a killed worker re-attaches instead of paying again.
 */
export function createItemWorker(o: ItemWorkerOptions): ItemWorker {
  const journals = new Map<string, Promise<JournalStore>>();
  const journalFor = (runDir: string) => {
    let j = journals.get(runDir);
    if (!j) journals.set(runDir, (j = JournalStore.open(journalPath(runDir))));
    return j;
  };
  // run.json is read and planned once per folder, and again only when it changes (a re-roll, an
  // edited re-enqueue): its manifest is as big as the run, so reading it per job would not be.
  const runFiles = new Map<
    string,
    { stamp: string; read: Promise<{ run: RunFile; plan: Map<string, PlanItem> }> }
  >();
  const runFileOf = async (runDir: string) => {
    const st = await stat(join(runDir, "run.json")).catch(() => undefined);
    const stamp = st ? `${st.ino}:${st.size}:${st.mtimeMs}` : "";
    let hit = runFiles.get(runDir);
    if (!st || hit?.stamp !== stamp) {
      const read = readRunFile(runDir).then((run) => {
        if (!run)
          throw new HailuoError("not_a_run", `${runDir} is not a run folder (no run.json)`, {
            retryable: false,
          });
        // Priced as enqueued: reservations and journaled costs at the account's price.
        return {
          run,
          plan: new Map(planRun(run.manifest, run.usdPerSecond).map((p) => [p.key, p])),
        };
      });
      read.catch(() => runFiles.delete(runDir));
      runFiles.set(runDir, (hit = { stamp, read }));
    }
    return hit.read;
  };
  // Per folder, the journal's state as far as this worker has read it: each job reads only what
  // was appended since (by any worker), so a job costs the same in a run of ten clips or ten thousand.
  const index = new Map<
    string,
    { offset: number; states: Map<string, ItemState>; seen: Set<string> }
  >();
  const statesOf = async (runDir: string) => {
    const at = index.get(runDir) ?? {
      offset: 0,
      states: new Map<string, ItemState>(),
      seen: new Set<string>(),
    };
    index.set(runDir, at);
    // A line stored twice is one record, as readJournal counts it.
    const { records, offset } = await readJsonlFrom<StoredRecord>(
      journalPath(runDir),
      at.offset,
      at.seen,
    );
    at.offset = offset;
    replayJournal(records, at.states);
    return at.states;
  };
  // Requests a job found on fal's list and is journaling: no other job of this worker takes them.
  const claimed = new Set<string>();
  const refuse = (message: string) => new HailuoError("locked", message, { retryable: false });

  return {
    async run(runDir, key) {
      const { run, plan } = await runFileOf(runDir);
      const item = plan.get(key);
      if (!item)
        throw new HailuoError("not_a_run", `generation ${key} is not in ${runDir}/run.json`, {
          retryable: false,
        });
      if (await runLockHeld(runDir))
        throw refuse(
          `${runDir} is being run by a local hailuo process (run.lock is held); a worker never submits into it`,
        );
      checkBackend(runDir, run.backend, o.backend);
      const states = await statesOf(runDir);
      // A copy: the index follows the journal, this job follows its own steps.
      const state = structuredClone(states.get(key) ?? newItemState(key));
      const from = state.live ? "live" : state.phase;
      // run.json says whether the run has a budget: then it must be found in Redis, never assumed gone.
      const budget = o.budgetFor?.(runDir, run.budgetUsd !== undefined);
      let stopError: HailuoError | undefined;
      const outcome = await processItem(item, {
        runDir,
        client: o.client,
        journal: await journalFor(runDir),
        state,
        intact: state.phase === "done" && (await clipIntact(runDir, state.clip)),
        signal: o.signal,
        emit: o.emit ?? (() => {}),
        // The run's own setting (run.json) wins over this worker's default.
        retries: run.retries ?? o.retries,
        retryBaseDelayMs: o.retryBaseDelayMs,
        onStopRun: (e) => (stopError = e),
        reserve: budget?.reserve,
        release: budget?.release,
        knownRequestIds: () =>
          new Set([...claimed, ...[...states.values()].flatMap((s) => s.requestIds)]),
        claimRequestIds: (ids) => ids.forEach((id) => claimed.add(id)),
      });
      const err = stopError ?? state.error;
      return {
        outcome,
        sceneId: item.sceneId,
        take: item.take,
        from,
        file: state.clip?.file,
        ...(outcome === "failed" && err ? { error: { code: err.code, message: err.message } } : {}),
      };
    },
    async finish(runDir) {
      const run = await readRunFile(runDir);
      if (!run) throw notARun(runDir);
      const { manifest } = run;
      const { records, damaged } = await readJournal(journalPath(runDir));
      const report = buildReport(manifest, runDir, records, {
        thisRunFrom: records.findLastIndex((r) => r.t === "enqueued"),
        damaged,
        backend: run.backend,
      });
      await writeReports(runDir, report);
      await (
        await journalFor(runDir)
      ).append({
        t: "finished",
        ok: report.totals.done + report.totals.cached,
        failed: report.totals.failed,
      });
      // The run is over: what this worker kept of it goes (a long-lived worker sees many runs).
      index.delete(runDir);
      runFiles.delete(runDir);
      return { manifest, report };
    },
    async close() {
      for (const j of journals.values()) await (await j).close();
    },
  };
}
