import { stat } from "node:fs/promises";
import { join } from "node:path";
import type { HailuoClient } from "@hailuo/core";
import type { Manifest } from "@hailuo/manifest";
import { HailuoError, parseNewLines } from "@hailuo/shared";
import type { RunStore } from "@hailuo/store";
import { storedClipIntact } from "./clip-file.js";
import type { RunEvent } from "./events.js";
import type { ItemOutcome } from "./item-context.js";
import { processItem } from "./item-step.js";
import { JournalStore, readJournal, type StoredRecord } from "./journal-store.js";
import { planRun, type PlanItem } from "./plan.js";
import { writeReports, type RunReport } from "./report.js";
import {
  type Backend,
  checkBackend,
  notARun,
  readRunFileText,
  type RunFile,
} from "./run-folder.js";
import { buildReport } from "./run-report.js";
import {
  newItemState,
  replayJournal,
  uploadsOf,
  type ItemState,
  type JournaledUpload,
} from "./run-state.js";
import { createImageInputs } from "./image-inputs.js";
import { createRunGuards, memoryBudget, type RunGuards } from "./run-guards.js";

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
    store: RunStore,
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

/** What one job of a queue adds to the worker's own stop: its own hold on the generation. */
export interface ItemJobControls {
  /** Stops this generation (its submit on the wire too): the job is no longer this worker's. */
  signal?: AbortSignal;
  /**
   * Awaited before each journal record and each send of a submit: rejects once the job is
   * another's, so a worker paused or cut off past its lock neither pays nor writes stale records.
   */
  confirm?: () => Promise<void>;
}

/** The runner's one entry for queue workers: a generation of a run, and a run's end. */
export interface ItemWorker {
  /** Runs one generation from wherever the run's journal left it. Throws a non-retryable HailuoError for a job that must not run. */
  run(store: RunStore, key: string, job?: ItemJobControls): Promise<WorkerItemResult>;
  /** Writes the run's reports (kept in its store) and marks the distributed run finished (it may run locally again). */
  finish(store: RunStore): Promise<{ manifest: Manifest; report: RunReport }>;
  /** Forgets what it kept of a run (a long-lived worker sees many runs). */
  forget(store: RunStore): void;
  /** Closes the journals it opened. */
  close(): Promise<void>;
}

/**
 * Runs single generations of runs for queue workers with the same item step, journal and ledger
 * as a local run, so a job taken over from a killed worker re-attaches instead of paying again.
 * Runs are kept apart by their store's address.
 */
export function createItemWorker(o: ItemWorkerOptions): ItemWorker {
  const journals = new Map<string, Promise<JournalStore>>();
  const journalFor = (store: RunStore) => {
    let j = journals.get(store.url);
    if (!j) journals.set(store.url, (j = JournalStore.on(store)));
    return j;
  };
  // run.json is read and planned once per folder, and again only when it changes (a re-roll, an
  // edited re-enqueue): its manifest is as big as the run, so reading it per job would not be.
  const runFiles = new Map<
    string,
    { stamp: string; read: Promise<{ run: RunFile; plan: Map<string, PlanItem> }> }
  >();
  const runFileOf = async (store: RunStore) => {
    // A folder's run.json is stamped by its file facts; a stored one by its text (one GET).
    let stamp: string | undefined;
    if (store.kind === "local") {
      const st = await stat(join(store.dir, "run.json")).catch(() => undefined);
      stamp = st ? `${st.ino}:${st.size}:${st.mtimeMs}` : undefined;
    } else stamp = await store.readDocument("run.json");
    let hit = runFiles.get(store.url);
    if (stamp === undefined || hit?.stamp !== stamp) {
      const read = readRunFileText(store).then((found) => {
        if (!found)
          throw new HailuoError("not_a_run", notARun(store.url).message, { retryable: false });
        const run = found.file;
        // Priced as enqueued: reservations and journaled costs at the account's price.
        return {
          run,
          plan: new Map(
            planRun(run.manifest, run.usdPerSecond, { unitPricesUsd: run.unitPricesUsd }).map(
              (p) => [p.key, p],
            ),
          ),
        };
      });
      read.catch(() => runFiles.delete(store.url));
      runFiles.set(store.url, (hit = { stamp: stamp ?? "", read }));
    }
    return hit.read;
  };
  // Per run, the journal's state as far as this worker has read it: each job reads only what
  // was appended since (by any worker), so a job costs the same in a run of ten clips or ten thousand.
  const index = new Map<
    string,
    {
      cursor?: string;
      states: Map<string, ItemState>;
      seen: Set<string>;
      uploads: Map<string, JournaledUpload>;
    }
  >();
  const indexOf = async (store: RunStore) => {
    const at = index.get(store.url) ?? {
      states: new Map<string, ItemState>(),
      seen: new Set<string>(),
      uploads: new Map<string, JournaledUpload>(),
    };
    index.set(store.url, at);
    const { lines, cursor } = await store.readLog(at.cursor);
    at.cursor = cursor;
    // A line stored twice is one record, as readJournal counts it.
    const fresh = parseNewLines<StoredRecord>(lines, at.seen);
    replayJournal(fresh, at.states);
    // Images uploaded at enqueue (or by another worker): their URLs, by content.
    uploadsOf(fresh, at.uploads);
    return at;
  };
  // Per run, what its jobs in this worker share: the budget, fal's reach, the Platform API's
  // availability, and requests claimed while their records land.
  const guards = new Map<string, RunGuards>();
  const guardsOf = (store: RunStore, run: RunFile, states: Map<string, ItemState>) => {
    let g = guards.get(store.url);
    if (!g) {
      g = createRunGuards({
        states: () => states.values(),
        // run.json says whether the run has a budget: then it must be found, never assumed gone.
        budget: o.budgetFor?.(store, run.budgetUsd !== undefined) ?? memoryBudget(undefined),
        emit: o.emit ?? (() => {}),
        stopRun: () => {},
      });
      guards.set(store.url, g);
    }
    return g;
  };
  const refuse = (message: string) => new HailuoError("locked", message, { retryable: false });

  return {
    async run(store, key, job = {}) {
      const { run, plan } = await runFileOf(store);
      const item = plan.get(key);
      if (!item)
        throw new HailuoError("not_a_run", `generation ${key} is not in ${store.url}/run.json`, {
          retryable: false,
        });
      if (await store.owned())
        throw refuse(
          `${store.url} is being run by a local hailuo process (it holds the run); a worker never submits into it`,
        );
      checkBackend(store.url, run.backend, o.backend);
      // A job still this worker's, in a run no local process has taken over (`--take-over`).
      const confirm = async () => {
        await job.confirm?.();
        if (await store.owned())
          throw refuse(
            `${store.url} was taken over by a local hailuo process; this worker stopped its job`,
          );
      };
      const { states, uploads } = await indexOf(store);
      const shared = await journalFor(store);
      // Every record this job writes is checked first: a worker that lost the job writes nothing
      // into the run the next holder now keeps (a stale "submitting" after its "done").
      const journal: Pick<JournalStore, "append"> = {
        append: async (record) => {
          await confirm();
          return shared.append(record);
        },
      };
      // A copy: the index follows the journal, this job follows its own steps.
      const state = structuredClone(states.get(key) ?? newItemState(key));
      const from = state.live ? "live" : state.phase;
      const runGuards = guardsOf(store, run, states);
      let stopError: HailuoError | undefined;
      const outcome = await processItem(item, {
        store,
        client: o.client,
        journal,
        state,
        intact: state.phase === "done" && (await storedClipIntact(store, state.clip)),
        signal: job.signal ? AbortSignal.any([o.signal, job.signal]) : o.signal,
        beforeSend: confirm,
        emit: o.emit ?? (() => {}),
        // The run's own setting (run.json) wins over this worker's default.
        retries: run.retries ?? o.retries,
        retryBaseDelayMs: o.retryBaseDelayMs,
        // This job fails with what stopped it; the run's other jobs meet it on their own.
        guards: { ...runGuards, stopRun: (e) => (stopError = e) },
        images: createImageInputs({ client: o.client, journal, store, uploads }),
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
    async finish(store) {
      // A run taken over by a local process (`--take-over`) is that process's to finish.
      if (await store.owned())
        throw refuse(
          `${store.url} was taken over by a local hailuo process; it writes the run's end and reports`,
        );
      const run = (await readRunFileText(store))?.file;
      if (!run) throw notARun(store.url);
      const { manifest } = run;
      const { records, damaged } = await readJournal(store);
      const report = buildReport(manifest, store.url, records, {
        thisRunFrom: records.findLastIndex((r) => r.t === "enqueued"),
        damaged,
        backend: run.backend,
      });
      await writeReports(store.dir, report);
      for (const name of ["report.json", "report.csv"]) await store.putArtifact(name);
      await (
        await journalFor(store)
      ).append({
        t: "finished",
        ok: report.totals.done + report.totals.cached,
        failed: report.totals.failed,
      });
      return { manifest, report };
    },
    forget(store) {
      index.delete(store.url);
      guards.delete(store.url);
      runFiles.delete(store.url);
      const journal = journals.get(store.url);
      journals.delete(store.url);
      void journal?.then((j) => j.close()).catch(() => {});
    },
    async close() {
      for (const j of journals.values()) await (await j).close();
    },
  };
}
