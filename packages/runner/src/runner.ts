import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import pLimit from "p-limit";
import type { HailuoClient, HailuoHandle, HailuoStatus } from "@hailuo/core";
import type { Manifest } from "@hailuo/manifest";
import { HailuoError, systemClock, type Clock } from "@hailuo/shared";
import type { RunEvent } from "./events.js";
import { clipIntact } from "./clip-file.js";
import { BudgetError, isFinalFailure, newItemState, type ItemOutcome } from "./item-context.js";
import { processItem } from "./item-step.js";
import { JournalStore, readJournal, type StoredRecord, journalPath } from "./journal-store.js";
import { planRun, sumUsd, type PlanItem } from "./plan.js";
import { preflight } from "./preflight.js";
import { writeReports, type RunReport } from "./report.js";
import { checkBackend, readRunFile, writeRunFile, type Backend } from "./run-folder.js";
import { acquireRunLock, RunLockedError } from "./run-lock.js";
import { buildReport } from "./run-report.js";
import { replayJournal, type ItemState } from "./run-state.js";

/** Options of `runManifest`. */
export interface RunOptions {
  manifest: Manifest;
  /** The run folder: journal, clips, reports. */
  runDir: string;
  client: HailuoClient;
  /** Where `client` sends requests; recorded in run.json, and a resume elsewhere is refused. */
  backend?: Backend;
  /** The account's price (fal's pricing API, see `livePrice`) for budgets and the ledger. @default the built-in table */
  priceUsdPerSecond?: number;
  /** Carry on against `backend` even though the run's requests went elsewhere. @default false */
  backendOverride?: boolean;
  /** Run locally in a folder a distributed run owns (its workers are gone). @default false */
  takeOver?: boolean;
  /** Generations in flight at once. @default 2 (a new fal account's limit) */
  concurrency?: number;
  /** Retries per item after the first attempt. @default 3 */
  retries?: number;
  /** Longest wait for one generation; the request stays live and `resume` re-attaches. @default 900000 */
  itemTimeoutMs?: number;
  /** Refuse to start, and stop submitting, past this many dollars. */
  budgetUsd?: number;
  /** Reuse clips this run folder already has for identical inputs. @default true */
  cache?: boolean;
  /** On interrupt, cancel requests still waiting in fal's queue. @default false */
  cancelOnExit?: boolean;
  /** Stops the run: no new submits, waiting ends, submits already sent get `submitGraceMs`. */
  signal?: AbortSignal;
  /** Aborts submits already on the wire at once (a second Ctrl-C); they are flagged as ambiguous. */
  hardSignal?: AbortSignal;
  /** How long a stopped run waits for submits already sent, so their ids reach the journal. @default 30000 */
  submitGraceMs?: number;
  /** Disk space reserved per second of video before the first submit. @default DISK_BYTES_PER_SECOND */
  diskBytesPerSecond?: number;
  onEvent?: (event: RunEvent) => void;
  clock?: Clock;
  /** Backoff base between item retries. @default 1000 */
  retryBaseDelayMs?: number;
  /** @default 30000 */
  retryMaxDelayMs?: number;
  /** How waiting is done. @default "stream" */
  waitMode?: "stream" | "poll";
}

/** What a run ended with. */
export interface RunResult {
  runDir: string;
  report: RunReport;
  interrupted: boolean;
  /** 0 all done, 1 some failed, 130 interrupted. */
  exitCode: 0 | 1 | 130;
}

/** Errors that end a whole run: every other item would meet them too. */
const RUN_STOPPERS = new Set(["auth", "disk_full", "unwritable", "ffmpeg_missing", "wrong_backend"]);

/** Refuses a local run in a folder whose distributed run (BullMQ workers) has not finished. */
function checkNotDistributed(runDir: string, records: StoredRecord[], takeOver: boolean): void {
  const last = records.findLast((r) => r.t === "enqueued" || r.t === "finished");
  if (last?.t === "enqueued" && !takeOver) {
    throw new RunLockedError(`${runDir} belongs to a distributed run enqueued at ${last.at} that has not finished; let \`hailuo worker\` processes finish it, or pass --take-over if its workers are gone`);
  }
}

/**
 * Runs a manifest into a run folder: plans scenes × takes, skips clips the folder already has,
 * re-attaches to requests still live, downloads paid clips not yet saved, checks everything that
 * can be checked before spending, submits the rest with bounded concurrency and retries, and
 * journals every step before acting on it, so a crash or Ctrl-C never pays twice or loses a paid
 * clip. Resuming is calling it again with the same folder.
 */
export async function runManifest(options: RunOptions): Promise<RunResult> {
  const { manifest, client, concurrency = 2, retries = 3, itemTimeoutMs = 900_000, cache = true, clock = systemClock, submitGraceMs = 30_000 } = options;
  const runDir = resolve(options.runDir);
  const emit = options.onEvent ?? (() => {});
  await mkdir(join(runDir, "clips"), { recursive: true });
  const runAbort = new AbortController();
  const release = await acquireRunLock(runDir, { onCompromised: (e) => runAbort.abort(new RunLockedError(`lost run.lock of ${runDir} (${e.message}); stopped so two processes never submit the same scenes`)) });
  let journal: JournalStore | undefined;
  const submitAbort = new AbortController();
  let graceTimer: NodeJS.Timeout | undefined;
  let submitsInFlight = 0;
  const onOuterAbort = () => {
    runAbort.abort(options.signal?.reason);
    if (submitsInFlight > 0) emit({ type: "warning", message: `waiting up to ${Math.round(submitGraceMs / 1000)} s for ${submitsInFlight} submit(s) already sent, so their request ids reach the journal` });
    graceTimer = setTimeout(() => submitAbort.abort(), submitGraceMs);
  };
  const onHardAbort = () => submitAbort.abort();
  options.signal?.addEventListener("abort", onOuterAbort, { once: true });
  options.hardSignal?.addEventListener("abort", onHardAbort, { once: true });
  if (options.signal?.aborted) onOuterAbort();
  if (options.hardSignal?.aborted) onHardAbort();
  const signal = runAbort.signal;
  try {
    const previous = await readRunFile(runDir);
    checkBackend(runDir, previous?.backend, options.backend, options.backendOverride);
    journal = await JournalStore.open(journalPath(runDir));
    const { records, tornLines } = await readJournal(journal.path);
    if (tornLines) emit({ type: "warning", message: `journal had ${tornLines} incomplete line(s) from a crash; ignored` });
    checkNotDistributed(runDir, records, Boolean(options.takeOver));
    await writeRunFile(runDir, manifest, options.backendOverride ? options.backend : (previous?.backend ?? options.backend));
    const states = replayJournal(records);
    const plan = planRun(manifest, options.priceUsdPerSecond);
    const unique = [...new Map(plan.map((p) => [p.key, p])).values()];

    // Decide per generation: reuse, re-attach, fetch again, or submit.
    const intact = new Map<string, boolean>();
    for (const item of unique) {
      const s = states.get(item.key);
      intact.set(item.key, cache && s?.phase === "done" && (await clipIntact(runDir, s.clip)));
    }
    const hasPaidOutput = (s: ItemState | undefined) => Boolean((s?.phase === "completed" || (s?.phase === "done" && cache)) && s.videoUrl);
    const needsSubmit = (item: PlanItem) => {
      const s = states.get(item.key);
      return !intact.get(item.key) && !s?.live && !hasPaidOutput(s) && !isFinalFailure(s);
    };
    const toSubmit = unique.filter(needsSubmit);
    const toSave = unique.filter((i) => !intact.get(i.key) && !isFinalFailure(states.get(i.key)));
    const estimateUsd = sumUsd(toSubmit.map((i) => i.costUsd));
    const reattach = unique.filter((i) => !intact.get(i.key) && states.get(i.key)?.live).length;
    emit({ type: "plan", runDir, items: plan.length, unique: unique.length, cached: unique.filter((i) => intact.get(i.key)).length, reattach, toSubmit: toSubmit.length, estimateUsd, budgetUsd: options.budgetUsd });
    if (options.budgetUsd !== undefined && estimateUsd > options.budgetUsd) {
      throw new BudgetError(`this run needs $${estimateUsd.toFixed(2)} for ${toSubmit.length} generation(s), over the budget of $${options.budgetUsd.toFixed(2)}; nothing was submitted`);
    }
    if (toSave.length) await preflight(runDir, manifest, toSave, { diskBytesPerSecond: options.diskBytesPerSecond });
    const thisRunFrom = records.length;
    await journal.append({ t: "run", name: manifest.name, manifest: manifest.file, items: plan.length, pid: process.pid });

    let committedUsd = 0;
    let platformAvailable = true;
    const live = new Map<string, { handle: HailuoHandle; state?: HailuoStatus["state"] }>();
    const limit = pLimit(Math.max(1, concurrency));
    const outcome = new Map<string, ItemOutcome>();
    const openJournal = journal;

    const step = async (item: PlanItem): Promise<void> => {
      const state = states.get(item.key) ?? newItemState(item.key);
      states.set(item.key, state);
      const result = await processItem(item, {
        runDir,
        client,
        journal: openJournal,
        state,
        intact: Boolean(intact.get(item.key)),
        signal,
        submitSignal: submitAbort.signal,
        emit,
        retries,
        itemTimeoutMs,
        waitMode: options.waitMode,
        retryBaseDelayMs: options.retryBaseDelayMs,
        retryMaxDelayMs: options.retryMaxDelayMs,
        cache,
        clock,
        reserve: (usd) => {
          if (options.budgetUsd !== undefined && committedUsd + usd > options.budgetUsd + 1e-9) return false;
          committedUsd += usd;
          return true;
        },
        release: (usd) => {
          committedUsd -= usd;
        },
        onLive: (entry) => (entry ? live.set(item.key, entry) : live.delete(item.key)),
        onSubmitInFlight: (on) => (submitsInFlight += on ? 1 : -1),
        onStopRun: (e) => runAbort.abort(e),
        knownRequestIds: () => new Set([...states.values()].flatMap((st) => st.requestIds)),
        platformAvailable: () => platformAvailable,
        onPlatformUnavailable: (e) => {
          if (!platformAvailable) return;
          platformAvailable = false;
          emit({ type: "warning", message: `${e.message}; submits whose answer was lost are flagged as possible double charges instead of looked up` });
        },
      });
      outcome.set(item.key, result);
    };

    for (const item of unique) emit({ type: "item", key: item.key, sceneId: item.sceneId, take: item.take, phase: "waiting" });
    await Promise.all(unique.map((item) => limit(() => step(item))));

    const stopper = signal.reason instanceof HailuoError && RUN_STOPPERS.has(signal.reason.code) ? signal.reason : undefined;
    const interrupted = signal.aborted && !stopper;
    if (interrupted && options.cancelOnExit) {
      for (const [key, { handle, state }] of live) {
        if (state !== "queued") continue;
        const answer = await client.cancel(handle, { signal: AbortSignal.timeout(10_000) }).catch((error: Error) => `failed: ${error.message}`);
        // Only a cancel fal accepted ends the request; one that already finished (or a failed
        // cancel) stays live in the journal, so resume fetches what was paid for instead of paying again.
        if (answer !== "cancellation_requested" && answer !== "not_found") {
          emit({ type: "warning", message: `could not cancel ${handle.requestId} (${answer}); resume will pick it up` });
          continue;
        }
        // Still live: a running request may complete anyway (and bill); resume asks fal how it ended.
        await journal.append({ t: "cancelled", key, requestId: handle.requestId, answer });
      }
    }
    if (interrupted) {
      await journal.append({ t: "interrupted" });
      emit({ type: "interrupted", runDir });
    }
    const report = buildReport(manifest, runDir, (await readJournal(journal.path)).records, { outcome, thisRunFrom, usdPerSecond: options.priceUsdPerSecond });
    await writeReports(runDir, report);
    await journal.append({ t: "finished", ok: report.totals.done + report.totals.cached, failed: report.totals.failed });
    const t = report.totals;
    emit({ type: "finished", ok: t.done, failed: t.failed, cached: t.cached, interrupted: t.interrupted, billedUsd: t.thisRunBilledUsd, possibleDoubleChargeUsd: t.thisRunPossibleDoubleChargeUsd });
    if (stopper) throw stopper;
    return { runDir, report, interrupted, exitCode: interrupted ? 130 : report.totals.failed + report.totals.pending > 0 ? 1 : 0 };
  } finally {
    if (graceTimer) clearTimeout(graceTimer);
    options.signal?.removeEventListener("abort", onOuterAbort);
    options.hardSignal?.removeEventListener("abort", onHardAbort);
    await journal?.close();
    await release();
  }
}
