import { mkdir, readFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import pLimit from "p-limit";
import type { HailuoClient, HailuoHandle, HailuoStatus } from "@hailuo/core";
import type { Manifest } from "@hailuo/manifest";
import { HailuoError, systemClock, type Clock } from "@hailuo/shared";
import type { RunEvent } from "./events.js";
import { BudgetError, clipIntact, isFinalFailure, newItemState, processItem, type ItemOutcome } from "./item-step.js";
import { JournalStore, readJournal } from "./journal-store.js";
import { planRun, sumUsd, type PlanItem } from "./plan.js";
import { atomicWrite, writeReports, type ItemReport, type RunReport } from "./report.js";
import { acquireRunLock } from "./run-lock.js";
import { replayJournal, type ItemState } from "./run-state.js";

/** Options of `runManifest`. */
export interface RunOptions {
  manifest: Manifest;
  /** The run folder: journal, clips, reports. */
  runDir: string;
  client: HailuoClient;
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
  signal?: AbortSignal;
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






/** Records the manifest a run folder runs (run.json), so resume and workers need nothing else. */
export async function writeRunManifest(runDir: string, manifest: Manifest): Promise<void> {
  await atomicWrite(join(runDir, "run.json"), `${JSON.stringify({ version: 1, manifest }, null, 2)}\n`);
}

/** Reads the manifest a run folder was started with (written as run.json). */
export async function readRunManifest(runDir: string): Promise<Manifest> {
  const text = await readFile(join(runDir, "run.json"), "utf8").catch(() => {
    throw new HailuoError("not_a_run", `${runDir} is not a run folder (no run.json)`);
  });
  return (JSON.parse(text) as { manifest: Manifest }).manifest;
}

/**
 * Runs a manifest into a run folder: plans scenes × takes, skips clips the folder already has,
 * re-attaches to requests still live, submits the rest with bounded concurrency and retries,
 * and journals every step before acting on it, so a crash or Ctrl-C never pays twice or loses a
 * paid clip. Resuming is calling it again with the same folder.
 */
export async function runManifest(options: RunOptions): Promise<RunResult> {
  const { manifest, client, concurrency = 2, retries = 3, itemTimeoutMs = 900_000, cache = true, clock = systemClock } = options;
  const runDir = resolve(options.runDir);
  const emit = options.onEvent ?? (() => {});
  await mkdir(join(runDir, "clips"), { recursive: true });
  const release = await acquireRunLock(join(runDir, "run.lock"));
  const journal = await JournalStore.open(join(runDir, "journal.jsonl"));
  const runAbort = new AbortController();
  const onOuterAbort = () => runAbort.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onOuterAbort, { once: true });
  if (options.signal?.aborted) runAbort.abort();
  const signal = runAbort.signal;
  try {
    await writeRunManifest(runDir, manifest);
    const { records, tornLines } = await readJournal(journal.path);
    if (tornLines) emit({ type: "warning", message: `journal had ${tornLines} incomplete line(s) from a crash; ignored` });
    const states = replayJournal(records);
    const plan = planRun(manifest);
    const unique = [...new Map(plan.map((p) => [p.key, p])).values()];

    // Decide per generation: reuse, re-attach, fetch again, or submit.
    const intact = new Map<string, boolean>();
    for (const item of unique) {
      const s = states.get(item.key);
      intact.set(item.key, cache && s?.phase === "done" && (await clipIntact(runDir, s.clip)));
    }
    const needsSubmit = (item: PlanItem) => {
      const s = states.get(item.key);
      return !intact.get(item.key) && !s?.live && !(s?.phase === "completed" && s.videoUrl) && !(s?.phase === "done" && cache && s.videoUrl) && !isFinalFailure(s);
    };
    const toSubmit = unique.filter(needsSubmit);
    const estimateUsd = sumUsd(toSubmit.map((i) => i.costUsd));
    const reattach = unique.filter((i) => !intact.get(i.key) && states.get(i.key)?.live).length;
    emit({ type: "plan", runDir, items: plan.length, unique: unique.length, cached: unique.filter((i) => intact.get(i.key)).length, reattach, toSubmit: toSubmit.length, estimateUsd, budgetUsd: options.budgetUsd });
    if (options.budgetUsd !== undefined && estimateUsd > options.budgetUsd) {
      throw new BudgetError(`this run needs $${estimateUsd.toFixed(2)} for ${toSubmit.length} generation(s), over the budget of $${options.budgetUsd.toFixed(2)}; nothing was submitted`);
    }
    await journal.append({ t: "run", name: manifest.name, manifest: manifest.file, items: plan.length, pid: process.pid });

    let committedUsd = 0;
    const live = new Map<string, { handle: HailuoHandle; state?: HailuoStatus["state"] }>();
    const limit = pLimit(Math.max(1, concurrency));
    const outcome = new Map<string, ItemOutcome>();

    const step = async (item: PlanItem): Promise<void> => {
      const state = states.get(item.key) ?? newItemState(item.key);
      states.set(item.key, state);
      const result = await processItem(item, {
        runDir,
        client,
        journal,
        state,
        intact: Boolean(intact.get(item.key)),
        signal,
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
        onAuthFailure: (e) => runAbort.abort(e),
      });
      outcome.set(item.key, result);
    };

    for (const item of unique) emit({ type: "item", key: item.key, sceneId: item.sceneId, take: item.take, phase: "waiting" });
    await Promise.all(unique.map((item) => limit(() => step(item))));

    const interrupted = signal.aborted && !(signal.reason instanceof HailuoError && signal.reason.code === "auth");
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
        await journal.append({ t: "cancelled", key, requestId: handle.requestId, answer });
        const st = states.get(key);
        if (st) st.live = false;
      }
    }
    if (interrupted) {
      await journal.append({ t: "interrupted" });
      emit({ type: "interrupted", runDir });
    }
    const finalStates = replayJournal((await readJournal(journal.path)).records);
    const report = buildReport(manifest, runDir, plan, finalStates, outcome);
    await writeReports(runDir, report);
    await journal.append({ t: "finished", ok: report.totals.done + report.totals.cached, failed: report.totals.failed });
    emit({ type: "finished", ok: report.totals.done, failed: report.totals.failed, cached: report.totals.cached, interrupted: report.totals.interrupted, spentUsd: report.totals.spentUsd });
    if (signal.reason instanceof HailuoError && signal.reason.code === "auth") throw signal.reason;
    return { runDir, report, interrupted, exitCode: interrupted ? 130 : report.totals.failed + report.totals.pending > 0 ? 1 : 0 };
  } finally {
    options.signal?.removeEventListener("abort", onOuterAbort);
    await journal.close();
    await release();
  }
}

/** Builds the report rows for every scene-take from the journal's state. */
export function buildReport(
  manifest: Manifest,
  runDir: string,
  plan: PlanItem[],
  states: Map<string, ItemState>,
  outcome: Map<string, ItemOutcome> = new Map(),
): RunReport {
  const firstScene = new Map<string, string>();
  const items: ItemReport[] = plan.map((p) => {
    const s = states.get(p.key);
    const first = firstScene.get(p.key);
    if (!first) firstScene.set(p.key, `${p.sceneId}#${p.take}`);
    const status: ItemReport["status"] =
      outcome.get(p.key) ?? (s?.phase === "done" ? "done" : s?.phase === "failed" ? "failed" : s?.live ? "interrupted" : "pending");
    // Every finished clip of this input was billed once; a row reusing another's clip costs nothing.
    const costUsd = first ? 0 : sumUsd(Array(s?.clips.length ?? 0).fill(p.costUsd));
    const row: ItemReport = {
      scene: p.sceneId,
      take: p.take,
      key: p.key,
      status,
      requestId: s?.clips.at(-1)?.requestId ?? s?.requestIds.at(-1),
      requestIds: s?.requestIds ?? [],
      attempts: s?.attempts ?? 0,
      seconds: s?.clip?.durationS,
      costUsd,
      ambiguousSubmits: first ? 0 : (s?.ambiguousSubmits ?? 0),
      possibleDoubleChargeUsd: first ? 0 : sumUsd(Array(s?.ambiguousSubmits ?? 0).fill(p.costUsd)),
      file: s?.phase === "done" ? s.clip?.file : undefined,
      prompt: p.input.prompt,
      duration: p.input.duration,
    };
    if (status === "failed" && s?.error) {
      row.error = s.error.message;
      row.errorCode = s.error.code;
    }
    if (first) row.sameAs = first;
    return row;
  });
  const count = (st: ItemReport["status"]) => items.filter((i) => i.status === st).length;
  return {
    name: manifest.name,
    manifest: manifest.file,
    runDir: relative(process.cwd(), runDir) || ".",
    generatedAt: new Date().toISOString(),
    totals: {
      items: items.length,
      done: count("done"),
      cached: count("cached"),
      failed: count("failed"),
      interrupted: count("interrupted"),
      pending: count("pending"),
      spentUsd: sumUsd(items.map((i) => i.costUsd)),
      thisRunUsd: sumUsd(plan.filter((p, n) => items[n]!.status === "done" && !items[n]!.sameAs && outcome.has(p.key)).map((p) => p.costUsd)),
      possibleDoubleChargeUsd: sumUsd(items.map((i) => i.possibleDoubleChargeUsd)),
    },
    items,
  };
}

