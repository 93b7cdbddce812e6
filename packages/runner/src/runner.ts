import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, stat, unlink } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import pLimit from "p-limit";
import { downloadVideo, resultForStatus, type HailuoClient, type HailuoHandle, type HailuoStatus } from "@hailuo/core";
import type { Manifest } from "@hailuo/manifest";
import { probe } from "@hailuo/media";
import { HailuoError, backoffDelayMs, redactSecrets, systemClock, type Clock } from "@hailuo/shared";
import type { ItemPhase, RunEvent } from "./events.js";
import { JournalStore, readJournal, type ClipFacts } from "./journal-store.js";
import { planRun, sumUsd, type PlanItem } from "./plan.js";
import { atomicWrite, writeReports, type ItemReport, type RunReport } from "./report.js";
import { acquireRunLock } from "./run-lock.js";
import { replayJournal, type ItemState } from "./run-state.js";

/** The run would cost more than `--budget` allows. */
export class BudgetError extends HailuoError {
  constructor(message: string) {
    super("budget", message, { retryable: false });
  }
}

/** A downloaded file is not the clip that was asked for. */
export class VerifyError extends HailuoError {
  constructor(message: string) {
    super("verify", message, { retryable: true });
  }
}

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

/** The file name of a paid clip: unique per request, so no paid clip is ever overwritten. */
export function clipFileName(item: Pick<PlanItem, "sceneId" | "take" | "scene">, requestId: string): string {
  const take = item.scene.takes > 1 ? `-take${item.take}` : "";
  return `${item.sceneId}${take}-${requestId.replace(/[^A-Za-z0-9]/g, "").slice(0, 8)}.mp4`;
}

/** Joins a relative path under `root`, refusing anything that would land outside it. */
export function insideDir(root: string, rel: string): string {
  const full = resolve(root, rel);
  if (full !== resolve(root) && !full.startsWith(resolve(root) + sep)) throw new HailuoError("unsafe_path", `refusing to write outside ${root}: ${rel}`);
  return full;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** True when the journaled clip is on disk, whole and unchanged. */
async function clipIntact(runDir: string, clip: ClipFacts | undefined): Promise<boolean> {
  if (!clip) return false;
  const path = insideDir(runDir, clip.file);
  const info = await stat(path).catch(() => undefined);
  return Boolean(info && info.size === clip.bytes && (await sha256File(path)) === clip.sha256);
}

/** Checks that a downloaded file is a plausible clip of the asked length. */
async function verifyClip(path: string, expectedS: number): Promise<{ durationS: number; width: number; height: number }> {
  const info = await probe(path).catch((error: Error) => {
    throw new VerifyError(`downloaded file is not a readable video: ${error.message}`);
  });
  if (info.width <= 0 || info.height <= 0) throw new VerifyError(`clip has no picture size (${info.width}x${info.height})`);
  if (info.durationS < expectedS - 0.75 || info.durationS > expectedS + 2) {
    throw new VerifyError(`clip lasts ${info.durationS.toFixed(2)} s; ${expectedS} s were asked for`);
  }
  return { durationS: info.durationS, width: info.width, height: info.height };
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
    await atomicWrite(join(runDir, "run.json"), `${JSON.stringify({ version: 1, manifest }, null, 2)}\n`);
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
    // Validation and content-policy failures repeat for the same input: only an edit (a new key) retries them.
    const finalFailure = (s: ItemState | undefined) => s?.phase === "failed" && !s.live && (s.error?.code === "content_policy" || s.error?.code === "validation");
    const needsSubmit = (item: PlanItem) => {
      const s = states.get(item.key);
      return !intact.get(item.key) && !s?.live && !(s?.phase === "completed" && s.videoUrl) && !(s?.phase === "done" && cache && s.videoUrl) && !finalFailure(s);
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
    const outcome = new Map<string, "done" | "cached" | "failed" | "interrupted">();

    const processItem = async (item: PlanItem): Promise<void> => {
      const s: ItemState = states.get(item.key) ?? { key: item.key, phase: "new", submits: 0, ambiguousSubmits: 0, attempts: 0, requestIds: [], clips: [], live: false };
      states.set(item.key, s);
      const say = (phase: ItemPhase, extra: Partial<Extract<RunEvent, { type: "item" }>> = {}) =>
        emit({ type: "item", key: item.key, sceneId: item.sceneId, take: item.take, phase, ...extra });
      if (intact.get(item.key)) {
        outcome.set(item.key, "cached");
        return say("cached", { requestId: s.clips.at(-1)?.requestId });
      }
      if (finalFailure(s)) {
        outcome.set(item.key, "failed");
        return say("failed", { detail: `${s.error?.code}: ${s.error?.message} (not retried for the same input; edit the scene to try again)` });
      }
      // Where to pick up: a live request is re-attached, a completed one only downloaded again.
      let handle = s.live ? s.handle : undefined;
      let videoUrl = s.phase === "completed" || (s.phase === "done" && cache) ? s.videoUrl : undefined;
      let fileSize = videoUrl ? s.fileSize : undefined;
      let requestId = handle?.requestId ?? s.requestIds.at(-1);
      if (s.phase === "done" && cache && videoUrl) {
        emit({ type: "warning", message: `${item.sceneId}: clip ${s.clip?.file} is missing or corrupt; downloading the paid clip again` });
      }
      let tries = 0;
      let stage = "submit";
      for (;;) {
        if (signal.aborted) {
          outcome.set(item.key, "interrupted");
          return say("interrupted");
        }
        try {
          if (!videoUrl) {
            if (!handle) {
              stage = "submit";
              if (options.budgetUsd !== undefined && committedUsd + item.costUsd > options.budgetUsd + 1e-9) {
                throw new BudgetError(`budget of $${options.budgetUsd.toFixed(2)} reached ($${committedUsd.toFixed(2)} spent or in flight); not submitted`);
              }
              say("submitting");
              committedUsd += item.costUsd;
              await journal.append({ t: "submitting", key: item.key, scene: item.sceneId, take: item.take, attempt: s.attempts + 1 });
              s.attempts++;
              try {
                handle = await client.submit(item.input, { signal });
              } catch (error) {
                const e = error as HailuoError;
                if (e.code === "submit_ambiguous") {
                  // Maybe billed: keep it counted against the budget and in the report.
                  s.ambiguousSubmits++;
                  await journal.append({ t: "ambiguous", key: item.key, message: e.message });
                } else committedUsd -= item.costUsd;
                throw error;
              }
              await journal.append({ t: "submitted", key: item.key, handle });
              s.requestIds.push(handle.requestId);
              requestId = handle.requestId;
            } else if (s.live && !live.has(item.key)) say("queued", { requestId: handle.requestId, detail: "re-attached" });
            live.set(item.key, { handle });
            stage = "wait";
            const h: HailuoHandle = handle;
            const status = await client.wait(h, {
              signal,
              timeoutMs: itemTimeoutMs,
              mode: options.waitMode,
              onUpdate: (st) => {
                const entry = live.get(item.key);
                if (entry) entry.state = st.state;
                if (st.state === "queued") say("queued", { requestId: h.requestId, queuePosition: st.queuePosition });
                else if (st.state === "in_progress") say("in_progress", { requestId: h.requestId, detail: st.logs.at(-1)?.message });
              },
            });
            stage = "result";
            const output = await resultForStatus(client, h, status, signal);
            live.delete(item.key);
            videoUrl = output.video.url;
            fileSize = output.video.file_size || undefined;
            await journal.append({ t: "completed", key: item.key, requestId: h.requestId, videoUrl, fileSize });
          }
          stage = "download";
          say("downloading", { requestId });
          const rel = `clips/${clipFileName(item, requestId ?? "unknown")}`;
          const path = insideDir(runDir, rel);
          const dl = await downloadVideo(videoUrl, path, { expectedBytes: fileSize, signal });
          stage = "verify";
          say("verifying", { requestId });
          let facts: { durationS: number; width: number; height: number };
          try {
            facts = await verifyClip(path, Number(item.input.duration));
          } catch (error) {
            // Keep nothing unverified under the clip's name; the paid source is still at videoUrl.
            await unlink(path).catch(() => {});
            throw error;
          }
          const clip: ClipFacts = { file: rel, bytes: dl.bytes, sha256: dl.sha256, ...facts };
          await journal.append({ t: "done", key: item.key, requestId: requestId ?? "", ...clip });
          s.phase = "done";
          s.clip = clip;
          s.clips.push({ ...clip, requestId: requestId ?? "" });
          outcome.set(item.key, "done");
          return say("done", { requestId, detail: rel });
        } catch (error) {
          const e = error instanceof HailuoError ? error : new HailuoError("internal", redactSecrets(String((error as Error)?.message ?? error)), { cause: error });
          if (signal.aborted) {
            outcome.set(item.key, "interrupted");
            return say("interrupted", { requestId });
          }
          if (e.code === "generation_failed") {
            // The request is over and fal does not bill failures: a new submit is a new attempt.
            committedUsd -= item.costUsd;
            handle = undefined;
            live.delete(item.key);
          }
          if (e.code === "submit_ambiguous") handle = undefined;
          const liveRequest = Boolean(handle) && !videoUrl;
          const fail = async () => {
            s.error = { code: e.code, message: e.message, retryable: e.retryable };
            await journal.append({ t: "failed", key: item.key, code: e.code, message: e.message, retryable: e.retryable, requestId, live: liveRequest });
            outcome.set(item.key, "failed");
            say("failed", { requestId, detail: `${e.code}: ${e.message}` });
          };
          if (e.code === "auth") {
            await fail();
            runAbort.abort(e);
            return;
          }
          // A timed-out wait leaves the request running on fal; resume will re-attach, never resubmit.
          if (!e.retryable || e.code === "timeout" || e.code === "budget" || tries >= retries) return fail();
          tries++;
          const delayMs = backoffDelayMs(tries - 1, e, { baseDelayMs: options.retryBaseDelayMs ?? 1000, maxDelayMs: options.retryMaxDelayMs ?? 30_000 });
          const retryStage = e.code === "generation_failed" ? "generate" : stage;
          await journal.append({ t: "retry", key: item.key, attempt: s.attempts, code: e.code, message: e.message, delayMs, stage: retryStage });
          say("retrying", { requestId, detail: `${e.code} during ${stage}; retry ${tries}/${retries} in ${(delayMs / 1000).toFixed(1)} s` });
          try {
            await clock.sleep(delayMs, signal);
          } catch {
            outcome.set(item.key, "interrupted");
            return say("interrupted", { requestId });
          }
        }
      }
    };

    await Promise.all(unique.map((item) => limit(() => processItem(item))));

    const interrupted = signal.aborted && !(signal.reason instanceof HailuoError && signal.reason.code === "auth");
    if (interrupted && options.cancelOnExit) {
      for (const [key, { handle, state }] of live) {
        if (state !== "queued") continue;
        const answer = await client.cancel(handle, { signal: AbortSignal.timeout(10_000) }).catch((error: Error) => `failed: ${error.message}`);
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
  outcome: Map<string, "done" | "cached" | "failed" | "interrupted"> = new Map(),
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

