import { mkdir, readdir, rm } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import pLimit from "p-limit";
import { HAILUO_ENDPOINT, livePrice, type HailuoClient, type LivePrice } from "@hailuo/core";
import type { Manifest } from "@hailuo/manifest";
import { HailuoError, systemClock, type Clock } from "@hailuo/shared";
import type { ItemPhase, RunEvent } from "./events.js";
import { cancelQueued } from "./cancel-on-exit.js";
import { createRunGuards, memoryBudget, type LiveEntry } from "./run-guards.js";
import { STOP_RUN } from "./classify.js";
import {
  BudgetError,
  PriceUnknownError,
  journalAndApply,
  type ItemContext,
  type ItemOutcome,
} from "./item-context.js";
import { processItem } from "./item-step.js";
import {
  JournalStore,
  readJournal,
  type JournalDamage,
  type StoredRecord,
} from "./journal-store.js";
import { createPlanner, planRun, sumUsd, type PlanItem } from "./plan.js";
import { runScenes, waitingForSources, whySourceHasNoClip } from "./continuations.js";
import { createImageInputs } from "./image-inputs.js";
import { storedClipIntact } from "./clip-file.js";
import { carryRerolls, readPicks } from "./picks.js";
import { preflight } from "./preflight.js";
import { writeReports, type ReportCaveat, type RunReport } from "./report.js";
import {
  checkBackend,
  mustBeRunFolder,
  notARun,
  readRunFileText,
  writeRunFile,
  type Backend,
  type RunAt,
} from "./run-folder.js";
import { createLocalStore, RunLockedError, type Ownership, type RunStore } from "@hailuo/store";
import { buildReport } from "./run-report.js";
import {
  newItemState,
  replayJournal,
  uploadsOf,
  type ItemState,
  type JournaledUpload,
} from "./run-state.js";
import { createStopControl, type StopControl } from "./stop-control.js";
import { planWork } from "./work-plan.js";
import { recoverFromWitnesses, type Recovery } from "./witnesses.js";

/** Options of `runManifest`. */
export interface RunOptions {
  /** What to run. @default the manifest the folder's run.json records (a resume), read under its lock */
  manifest?: Manifest;
  /**
   * Where the run lives: a folder (journal, clips, reports), or a store (`createRedisS3Store`:
   * records in Redis, files in a bucket, made in the store's scratch folder and uploaded).
   */
  runDir: RunAt;
  client: HailuoClient;
  /** Where `client` sends requests; recorded in run.json, and a resume elsewhere is refused. */
  backend?: Backend;
  /**
   * The account's price for budgets and the ledger: a number (the caller vouches for it) or a
   * `livePrice` quote, which may be unverified. A pending price is awaited only once the folder's
   * journal is read, so the network and the disk overlap.
   * @default `livePrice(client, HAILUO_ENDPOINT)`: fal's pricing API, else the list price, unverified
   */
  priceUsdPerSecond?: number | LivePrice | PromiseLike<number | LivePrice>;
  /**
   * The account's unit price of other endpoints than the seed, by endpoint id, in each record's
   * unit (per second or per video), vouched for by the caller.
   * @default `livePrice(client, endpointId)` for each endpoint the manifest uses
   */
  unitPricesUsd?: Readonly<Record<string, number>>;
  /**
   * Budget at the list price when fal cannot confirm the account's price. Without it a run with a
   * budget and an unverified price is refused before anything is sent. @default false
   */
  assumeListPrice?: boolean;
  /** Carry on against `backend` even though the run's requests went elsewhere. @default false */
  backendOverride?: boolean;
  /** Run locally in a folder a distributed run owns (its workers are gone). @default false */
  takeOver?: boolean;
  /** Generations in flight at once. @default 2 (a new fal account's limit) */
  concurrency?: number;
  /** Retries per item after the first attempt. @default 3 */
  retries?: number;
  /** Resends of a clip after lost answers fal's request list cannot explain; past it the run stops. @default 1 */
  lostAnswerResends?: number;
  /** Longest wait for one generation; the request stays live and `resume` re-attaches. @default 900000 */
  itemTimeoutMs?: number;
  /** Refuse to start, and stop submitting, past this many dollars. */
  budgetUsd?: number;
  /** Reuse clips this run folder already has for identical inputs. @default true */
  cache?: boolean;
  /** On interrupt, cancel requests still waiting in fal's queue. @default false */
  cancelOnExit?: boolean;
  /** Only these generations are worked on (`hailuo reroll`: the new takes); the report still covers every one. @default all */
  only?: (item: PlanItem) => boolean;
  /** Stops the run: no new submits, waiting ends, submits already sent get `submitGraceMs`. */
  signal?: AbortSignal;
  /** Aborts submits already on the wire at once (a second Ctrl-C); they are flagged as ambiguous. */
  hardSignal?: AbortSignal;
  /** How long a stopped run waits for submits already sent, so their ids reach the journal. @default 30000 */
  submitGraceMs?: number;
  /** Disk space reserved per second of video before the first submit. @default DISK_BYTES_PER_SECOND */
  diskBytesPerSecond?: number;
  onEvent?: (event: RunEvent) => void;
  /**
   * Asked once, after every check and before the first submit, when something is to be paid for;
   * throwing refuses the run with nothing spent (the CLI's "spend up to $X?" question).
   */
  confirmSpend?: (plan: { toSubmit: number; estimateUsd: number }) => Promise<void>;
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
  /** The run's folder, or its store's address (`s3://…`). */
  runDir: string;
  report: RunReport;
  interrupted: boolean;
  /** 0 all done, 1 some failed, 130 interrupted. */
  exitCode: 0 | 1 | 130;
}

/** Removes `.name.part` temp files of downloads a crashed process never finished (never a clip: those are renamed into place whole). */
async function removeStaleParts(clips: string): Promise<void> {
  for (const f of await readdir(clips).catch(() => [] as string[]))
    if (/^\..+\.part$/.test(f)) await rm(join(clips, f), { force: true });
}

/** The price a run uses: the caller's number (vouched for), its quote, or fal's pricing API. */
async function priceQuote(
  given: RunOptions["priceUsdPerSecond"],
  client: HailuoClient,
): Promise<LivePrice> {
  const p = await given;
  if (typeof p === "number") return { usdPerSecond: p, source: "--price", verified: true };
  return p ?? livePrice(client, HAILUO_ENDPOINT);
}

/** The prices of a run: the seed's as always, and each other endpoint its scenes use. */
export interface RunPrices {
  seed: LivePrice;
  /** Every endpoint the manifest uses but the seed, with its quote. */
  others: [string, LivePrice][];
  /** `others` as unit prices, for the plan. */
  unitPricesUsd: Record<string, number>;
}

/**
 * Quotes a run's prices: the seed's (`priceUsdPerSecond`), and per other endpoint the caller's
 * unit price (vouched for) or fal's pricing API (`livePrice`, one quote per endpoint), asked
 * side by side.
 */
export async function quoteRunPrices(
  options: Pick<RunOptions, "priceUsdPerSecond" | "unitPricesUsd">,
  client: HailuoClient,
  manifest: Manifest,
): Promise<RunPrices> {
  const ids = [...new Set(manifest.scenes.map((s) => s.endpoint ?? HAILUO_ENDPOINT))].filter(
    (id) => id !== HAILUO_ENDPOINT,
  );
  const [seed, ...quotes] = await Promise.all([
    priceQuote(options.priceUsdPerSecond, client),
    ...ids.map((id): Promise<LivePrice> => {
      const given = options.unitPricesUsd?.[id];
      return given !== undefined
        ? Promise.resolve({
            usdPerSecond: given,
            unitPriceUsd: given,
            source: "--price",
            verified: true,
          })
        : livePrice(client, id);
    }),
  ]);
  const others = ids.map((id, i): [string, LivePrice] => [id, quotes[i]!]);
  return {
    seed: seed!,
    others,
    unitPricesUsd: Object.fromEntries(
      others.map(([id, q]) => [id, q.unitPriceUsd ?? q.usdPerSecond]),
    ),
  };
}

/** The warning a run gives before spending at another endpoint's price fal did not confirm. */
function unverifiedEndpointMessage(endpointId: string, price: LivePrice): string {
  return `price of ${endpointId} not verified: fal's pricing API could not confirm the account's price (${price.reason ?? "no answer"}); amounts assume its list price $${price.unitPriceUsd ?? price.usdPerSecond}/${price.unit ?? "second"} and the report marks them unverified`;
}

/** The warning a run gives before spending at a price fal did not confirm. */
function unverifiedPriceMessage(price: LivePrice): string {
  return `price not verified: fal's pricing API could not confirm the account's price (${price.reason ?? "no answer"}); amounts assume the list price $${price.usdPerSecond}/s and the report marks them unverified (--price USD_PER_SECOND to give the account's price)`;
}

/** What a run tells about generations whose records were lost and what witnessed them. */
function tellRecovery(emit: (e: RunEvent) => void, r: Recovery): void {
  for (const a of r.adopted) {
    const how = a.confirmed
      ? "confirmed on fal's request list"
      : "named by the file; fal's request list could not confirm it";
    emit({
      type: "warning",
      message: `${a.item.sceneId}#${a.item.take}: its journal records were lost; adopted the paid clip ${a.file} (request ${a.requestId}, ${how}), not paid again`,
    });
  }
  for (const x of r.rejected)
    emit({
      type: "warning",
      message: `${x.file} looks like a clip of this run that the journal does not know, but it is not usable (${x.reason}); left in place`,
    });
  if (r.lookedUp)
    emit({
      type: "warning",
      message: `the journal lost records: ${r.lookedUp} generation(s) without any are looked up on fal's request list before they are submitted`,
    });
}

/** What a run tells about journal lines it could not read as records. */
function journalWarnings(torn: number[], damaged: JournalDamage[], duplicates: number): string[] {
  const lines = (ns: number[]) =>
    `${ns.length > 1 ? "lines" : "line"} ${ns.slice(0, 10).join(", ")}${ns.length > 10 ? ", …" : ""}`;
  return [
    ...(torn.length
      ? [
          `journal ${lines(torn)} cut short by a crash or a full disk mid-write (never acted on); skipped`,
        ]
      : []),
    ...(damaged.length
      ? [
          `journal ${lines(damaged.map((d) => d.line))} damaged (not a record: edited or corrupted on disk); skipped, and the report names the amounts it cannot vouch for`,
        ]
      : []),
    ...(duplicates
      ? [`journal has ${duplicates} line(s) stored twice; each record counted once`]
      : []),
  ];
}

/** Refuses a local run in a folder whose distributed run (BullMQ workers) has not finished. */
function checkNotDistributed(runDir: string, records: StoredRecord[], takeOver: boolean): void {
  const last = records.findLast((r) => r.t === "enqueued" || r.t === "finished");
  if (last?.t === "enqueued" && !takeOver) {
    throw new RunLockedError(
      `${runDir} belongs to a distributed run enqueued at ${last.at} that has not finished; let \`hailuo worker\` processes finish it, or pass --take-over if its workers are gone`,
    );
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
  const { client, concurrency = 2, cache = true } = options;
  const store =
    typeof options.runDir === "string" ? createLocalStore(resolve(options.runDir)) : options.runDir;
  const local = store.kind === "local";
  // Files are made here: the run folder, or a bucket run's scratch folder.
  const runDir = store.dir;
  // How the run is named in events, messages and the report: its folder, or its address.
  const name = local ? runDir : store.url;
  const emit = options.onEvent ?? (() => {});
  // A resume of a folder that is not a run leaves nothing behind in it (no clips/, no lock).
  if (!options.manifest && local) await mustBeRunFolder(runDir);
  await mkdir(join(runDir, "clips"), { recursive: true });
  const stop = createStopControl({
    signal: options.signal,
    hardSignal: options.hardSignal,
    graceMs: options.submitGraceMs ?? 30_000,
    emit,
  });
  // Once lost, another process may own the run: this one stops, writes nothing more into it
  // (no report, no cancels of requests that are the next owner's now) and says why.
  let lostOwnership: RunLockedError | undefined;
  const ownership = await store.acquire({
    // Submits on the wire are aborted too: their records are journaled, so the next owner looks
    // them up on fal; a re-send after a 429 would be a second submit nobody records.
    onLost: (e) =>
      stop.lose(
        (lostOwnership = new RunLockedError(
          `lost ${local ? "run.lock of" : "ownership of"} ${name} (${e.message}); stopped so two processes never submit the same scenes`,
        )),
      ),
  });
  let journal: JournalStore | undefined;
  try {
    // Holding the lock, nothing else writes here: a download cut off by a crash left only its temp file.
    await removeStaleParts(join(runDir, "clips"));
    const read = await readRunFileText(store);
    const previous = read?.file;
    if (!options.manifest && !previous) throw notARun(name);
    checkBackend(name, previous?.backend, options.backend, options.backendOverride);
    journal = await JournalStore.on(store, { keep: true });
    const { records, tornLines, damaged, duplicateLines } = await readJournal(store);
    for (const message of journalWarnings(tornLines, damaged, duplicateLines))
      emit({ type: "warning", message });
    checkNotDistributed(name, records, Boolean(options.takeOver));
    const manifest = options.manifest
      ? carryRerolls(options.manifest, previous?.manifest)
      : previous!.manifest;
    const states = replayJournal(records);
    const picks = await readPicks(store);
    const prices = await quoteRunPrices(options, client, manifest);
    const price = prices.seed;
    const usdPerSecond = price.usdPerSecond;
    const usesSeed = manifest.scenes.some(
      (sc) => (sc.endpoint ?? HAILUO_ENDPOINT) === HAILUO_ENDPOINT,
    );
    if (!price.verified && usesSeed)
      emit({ type: "warning", message: unverifiedPriceMessage(price) });
    for (const [id, q] of prices.others)
      if (!q.verified) emit({ type: "warning", message: unverifiedEndpointMessage(id, q) });
    // A continuing scene is keyed by its source's chosen clip: the journal's and picks.json's word.
    const context = { unitPricesUsd: prices.unitPricesUsd, states, picks };
    let planner = createPlanner(manifest, usdPerSecond, context);
    let plan = planner.items();
    const uniqueOf = (items: PlanItem[]) =>
      [...new Map(items.map((p) => [p.key, p])).values()].filter(options.only ?? (() => true));
    let unique = uniqueOf(plan);
    // Clips in clips/ the journal never mentions and no generation can use: paid once, by whom unknown.
    const unaccounted: ReportCaveat[] = [];
    // A folder's files witness what was paid; a bucket's objects do for a journal Redis lost.
    if (previous) {
      // Asked only for an orphan clip when fal's list cannot be read: planning a big run is not free.
      let keys: Set<string> | undefined;
      const recordedKeys = () =>
        (keys ??= new Set(planRun(previous.manifest, undefined, context).map((p) => p.key)));
      const recovery = await recoverFromWitnesses({
        store,
        // A generation still waiting for its source's clip has no key to adopt a clip under.
        items: unique.filter((i) => !i.awaits),
        states,
        journal,
        client,
        recordsLost: damaged.length > 0 || records.length === 0,
        firstAt: records[0]?.at,
        recordedKeys,
        signal: stop.signal,
      });
      tellRecovery(emit, recovery);
      for (const r of recovery.rejected)
        unaccounted.push({
          kind: "clip_unaccounted",
          message: `${r.file} looks like a paid clip of this run that the journal has no record of and no generation can use (${r.reason}): what it cost is not in these totals`,
        });
      // An adopted clip may be what a continuing scene continues from: keyed again.
      if (recovery.adopted.length) {
        planner = createPlanner(manifest, usdPerSecond, context);
        plan = planner.items();
        unique = uniqueOf(plan);
      }
    }
    const work = await planWork(store, unique, states, cache);
    const estimateUsd = sumUsd(work.toSubmit.map((i) => i.costUsd));
    // Generations that wait for their `continue_from` source (sources first); the rest start at once.
    const waiting = waitingForSources(unique, new Set(work.toSave.map((i) => i.key)));
    emit({
      type: "plan",
      runDir: name,
      items: plan.length,
      unique: unique.length,
      cached: work.intact.size,
      reattach: work.reattach.length,
      toSubmit: work.toSubmit.length,
      estimateUsd,
      budgetUsd: options.budgetUsd,
    });
    if (options.budgetUsd !== undefined && !options.assumeListPrice) {
      // A budget needs the account's price of every endpoint this run pays (the seed's first).
      for (const [id, q] of [[HAILUO_ENDPOINT, price] as const, ...prices.others])
        if (!q.verified && work.toSubmit.some((i) => i.endpoint === id))
          throw new PriceUnknownError(options.budgetUsd, q, "submitted", id);
    }
    if (options.budgetUsd !== undefined && estimateUsd > options.budgetUsd) {
      throw new BudgetError(
        `this run needs $${estimateUsd.toFixed(2)} for ${work.toSubmit.length} generation(s), over the budget of $${options.budgetUsd.toFixed(2)}; nothing was submitted`,
      );
    }
    if (work.toSave.length)
      await preflight(runDir, manifest, work.toSave, {
        diskBytesPerSecond: options.diskBytesPerSecond,
      });
    if (work.toSubmit.length && options.confirmSpend)
      await options.confirmSpend({ toSubmit: work.toSubmit.length, estimateUsd });
    // Only a run that passed every check is recorded: a refusal leaves run.json (and its re-rolls) as it was.
    const backend = options.backendOverride
      ? options.backend
      : (previous?.backend ?? options.backend);
    // What an enqueue recorded for every worker (price, budget, retries) stays recorded: a
    // take-over that dropped it would leave the workers after it without the run's budget.
    await writeRunFile(store, manifest, backend, read?.text, {
      usdPerSecond: previous?.usdPerSecond,
      unitPricesUsd: previous?.unitPricesUsd,
      budgetUsd: previous?.budgetUsd,
      retries: previous?.retries,
    });
    const thisRunFrom = records.length;
    const unverified = prices.others.filter(([, q]) => !q.verified);
    await journal.append({
      t: "run",
      name: manifest.name,
      manifest: manifest.file,
      items: plan.length,
      pid: process.pid,
      usdPerSecond,
      // The seed's price is the report's concern only where the seed is paid for.
      ...(price.verified || !usesSeed ? {} : { priceUnverified: price.reason ?? "no answer" }),
      ...(prices.others.length ? { unitPricesUsd: prices.unitPricesUsd } : {}),
      ...(unverified.length
        ? {
            pricesUnverified: Object.fromEntries(
              unverified.map(([id, q]) => [id, q.reason ?? "no answer"]),
            ),
          }
        : {}),
    });

    const live = new Map<string, LiveEntry>();
    const outcome = new Map<string, ItemOutcome>();
    const shared = sharedItemContext(options, store, journal, states, stop, live, {
      uploads: uploadsOf(records),
      ownership,
    });
    // The account's fal slots are held only while a request is submitted and awaited; downloads,
    // hashes and probes run on their own small pool, so the next submit never waits for a save.
    const falSlot = pLimit(Math.max(1, concurrency));
    const saveSlot = pLimit(Math.max(2, availableParallelism()));
    const waits = new Set(waiting);
    // Clips already on disk are settled here, without a step each (a resume of 10,000 is mostly these).
    for (const item of unique) {
      const seen = { type: "item", key: item.key, sceneId: item.sceneId, take: item.take } as const;
      if (waits.has(item)) {
        emit({ ...seen, phase: "waiting", detail: `for ${item.scene.continueFrom}'s chosen take` });
        continue;
      }
      if (!work.intact.has(item.key)) {
        emit({ ...seen, phase: "waiting" });
        continue;
      }
      outcome.set(item.key, "cached");
      emit({ ...seen, phase: "cached", requestId: states.get(item.key)?.clips.at(-1)?.requestId });
    }
    const touched = new Set<string>();
    const steps = new Map<string, Promise<ItemOutcome>>();
    const step = (item: PlanItem): Promise<ItemOutcome> => {
      let running = steps.get(item.key);
      if (!running) {
        touched.add(item.key);
        const state = states.get(item.key) ?? newItemState(item.key);
        states.set(item.key, state);
        running = processItem(item, { ...shared, state, intact: false, falSlot, saveSlot }).then(
          (o) => (outcome.set(item.key, o), o),
        );
        steps.set(item.key, running);
      }
      return running;
    };
    // A scene continuing another is keyed again once its source's work in this run is over.
    const refreshed = new Map<string, PlanItem[]>();
    const continueItem = async (item: PlanItem): Promise<unknown> => {
      const source = item.scene.continueFrom!;
      const say = (key: string, phase: ItemPhase, detail?: string) =>
        emit({ type: "item", key, sceneId: item.sceneId, take: item.take, phase, detail });
      if (stop.signal.aborted) {
        outcome.set(item.key, "interrupted");
        return say(item.key, "interrupted");
      }
      let scene = refreshed.get(item.sceneId);
      if (!scene) refreshed.set(item.sceneId, (scene = planner.refresh(item.sceneId)));
      const fresh = scene.find((i) => i.take === item.take) ?? item;
      if (fresh.awaits) {
        // The source ended with no clip: there is no first frame, so nothing is sent or paid.
        touched.add(fresh.key);
        const state = states.get(fresh.key) ?? newItemState(fresh.key);
        states.set(fresh.key, state);
        const why = whySourceHasNoClip(planner.scene(source), states);
        const message = `continue_from ${source}: scene ${source} has no clip to continue from (${why}); nothing was submitted for ${item.sceneId}#${item.take}`;
        await journalAndApply(
          { journal: journal!, state },
          {
            t: "failed",
            key: fresh.key,
            code: "preflight",
            message,
            retryable: false,
            live: false,
          },
          { bestEffort: true },
        );
        outcome.set(fresh.key, "failed");
        return say(fresh.key, "failed", `preflight: ${message}`);
      }
      const s = states.get(fresh.key);
      // A store that cannot answer now: the step checks again and downloads if it must.
      const kept =
        s?.phase === "done" && (await storedClipIntact(store, s.clip).catch(() => false));
      if (cache && kept) {
        outcome.set(fresh.key, "cached");
        return say(fresh.key, "cached");
      }
      return step(fresh);
    };
    await runScenes({
      now: unique.filter((item) => !work.intact.has(item.key) && !waits.has(item)),
      waiting,
      start: step,
      resume: continueItem,
    });
    plan = planner.items();

    if (lostOwnership) throw lostOwnership;
    const reason = stop.signal.reason;
    const stopper = reason instanceof HailuoError && STOP_RUN.has(reason.code) ? reason : undefined;
    const interrupted = stop.signal.aborted && !stopper;
    if (interrupted && options.cancelOnExit) await cancelQueued(client, live, journal, emit);
    if (interrupted) {
      await journal.append({ t: "interrupted" });
      emit({ type: "interrupted", runDir: name });
    }
    // Clips left alone by `only` (a re-roll) are reused, not generated by this run.
    for (const p of plan)
      if (!outcome.has(p.key) && states.get(p.key)?.phase === "done") outcome.set(p.key, "cached");
    // The lock kept every other writer out: the journal is what was read at the start plus what this run appended.
    const all = [...records, ...journal.appended];
    const report = buildReport(manifest, name, all, {
      outcome,
      thisRunFrom,
      plan,
      usdPerSecond,
      unitPricesUsd: prices.unitPricesUsd,
      picks: await readPicks(store),
      states: replayTouched(states, all, touched, thisRunFrom),
      damaged,
      caveats: unaccounted,
      backend,
    });
    await writeReports(runDir, report);
    // A bucket's report is the next owner's too: uploaded only while this process still holds
    // the run (a process paused past its lease would put back a stale, partial report).
    if (!local) {
      await ownership.confirm().catch((error: Error) => {
        throw lostOwnership ?? error;
      });
      for (const file of ["report.json", "report.csv"]) await store.putArtifact(file);
    }
    const t = report.totals;
    await journal.append({ t: "finished", ok: t.done + t.cached, failed: t.failed });
    emit({
      type: "finished",
      ok: t.done,
      failed: t.failed,
      cached: t.cached,
      interrupted: t.interrupted,
      billedUsd: t.thisRunBilledUsd,
      possibleDoubleChargeUsd: t.thisRunPossibleDoubleChargeUsd,
    });
    if (stopper) throw stopper;
    return {
      runDir: name,
      report,
      interrupted,
      exitCode: interrupted ? 130 : t.failed + t.pending > 0 ? 1 : 0,
    };
  } finally {
    stop.dispose();
    await journal?.close();
    await ownership.release();
  }
}

/**
 * The journal's replay after a run, from the replay before it: replaying is per generation, and
 * the states of generations no step touched were only read, so only the touched ones are replayed
 * again (steps changed their states as they went), from their own records. A resume of 10,000 done
 * clips replays nothing twice.
 */
function replayTouched(
  before: Map<string, ItemState>,
  records: StoredRecord[],
  touched: Set<string>,
  thisRunFrom: number,
): Map<string, ItemState> {
  if (!touched.size) return before;
  const thisRun = new Set(records.slice(thisRunFrom));
  const again = replayJournal(
    records.filter((r) => "key" in r && touched.has(r.key)),
    new Map(),
    { thisRun: (r) => thisRun.has(r) },
  );
  return new Map([...before, ...again]);
}

/** The parts of every item's context that the whole run shares: client, journal, guards, stop signals. */
function sharedItemContext(
  options: RunOptions,
  store: RunStore,
  journal: JournalStore,
  states: Map<string, ItemState>,
  stop: StopControl,
  live: Map<string, LiveEntry>,
  o: { uploads: Map<string, JournaledUpload>; ownership: Ownership },
): Omit<ItemContext, "state" | "intact"> {
  const emit = options.onEvent ?? (() => {});
  return {
    images: createImageInputs({
      client: options.client,
      journal,
      store,
      uploads: o.uploads,
      // Said once the upload is journaled: from here a resume reuses its URL.
      onUpload: (item, field, file) =>
        emit({
          type: "item",
          key: item.key,
          sceneId: item.sceneId,
          take: item.take,
          phase: "uploading",
          detail: `uploaded the ${field === "end_image_url" ? "end" : "start"} image (${file.bytes} bytes, sha256 ${file.sha256.slice(0, 12)}…)`,
        }),
    }),
    store,
    client: options.client,
    journal,
    signal: stop.signal,
    submitSignal: stop.submitSignal,
    beforeSend: () => o.ownership.confirm(),
    emit,
    retries: options.retries ?? 3,
    lostAnswerResends: options.lostAnswerResends,
    itemTimeoutMs: options.itemTimeoutMs ?? 900_000,
    waitMode: options.waitMode,
    retryBaseDelayMs: options.retryBaseDelayMs,
    retryMaxDelayMs: options.retryMaxDelayMs,
    cache: options.cache ?? true,
    clock: options.clock ?? systemClock,
    guards: createRunGuards({
      states: () => states.values(),
      budget: memoryBudget(options.budgetUsd),
      emit,
      stopRun: (e) => stop.stop(e),
      submitInFlight: stop.onSubmitInFlight,
      live: (key, entry) => (entry ? live.set(key, entry) : live.delete(key)),
    }),
  };
}
