import { join, resolve } from "node:path";
import { displayPath } from "../display-path.js";
import { isSafeId, slugify, type Manifest } from "@hailuo/manifest";
import { loadManifestTelling } from "../load-input.js";
import {
  mustBeRunFolder,
  previewRun,
  readRunManifest,
  runManifest,
  type PlanItem,
  type RunEvent,
  type RunAt,
  type RunResult,
  sumUsd,
} from "@hailuo/runner";
import type { HailuoError } from "@hailuo/shared";
import { onStoreFolder, openRunAt, type RunAtOptions } from "../run-at.js";
import type { FilmBuilder, MediaStageOptions, MediaStageResult } from "@hailuo/publish";
import { numberOption, parseVars } from "../options.js";
import {
  connectFal,
  describeEndpointPrice,
  describePrice,
  endpointPricesFor,
  priceFor,
  unitPricesOf,
} from "../fal-connection.js";
import { chooseView, createProgressView } from "../progress-view.js";
import { emitJson } from "../events.js";
import { askToSpend, mustConfirm } from "../confirm-spend.js";

/** Options shared by `run` and `resume`. */
export interface RunCommandOptions {
  out?: string;
  concurrency: string;
  retries: string;
  budget?: string;
  dryRun?: boolean;
  cache: boolean;
  cancelOnExit?: boolean;
  json?: boolean;
  timeoutMin: string;
  var: string[];
  assemble?: boolean;
  placeholders?: boolean;
  media: boolean;
  backendOverride?: boolean;
  takeOver?: boolean;
  yes?: boolean;
  confirmAbove?: string;
  price?: string;
  assumeListPrice?: boolean;
  resendLost: string;
}

// A run stopped by these left every paid clip journaled: fixing the cause and resuming loses nothing.
const RESUMABLE_STOPS = new Set([
  "disk_full",
  "unwritable",
  "ffmpeg_missing",
  "auth",
  "unreachable",
  "answers_lost",
]);

/** The default run folder for a manifest: runs/<safe name>. */
export function defaultRunDir(manifest: Manifest): string {
  return join("runs", isSafeId(manifest.name) ? manifest.name : slugify(manifest.name));
}

/** Every numeric option, checked before anything starts (a bad value is a usage error, exit 2, even for a dry run). */
export function runNumbers(opts: RunCommandOptions) {
  numberOption("confirm-above", opts.confirmAbove, { integer: false });
  return {
    concurrency: numberOption("concurrency", opts.concurrency, { min: 1 }),
    retries: numberOption("retries", opts.retries),
    budgetUsd: numberOption("budget", opts.budget, { integer: false }),
    lostAnswerResends: numberOption("resend-lost", opts.resendLost),
    // A price of 0 would make every clip free and every budget endless.
    givenPrice: numberOption("price", opts.price, { integer: false, min: 0.000001 }),
    itemTimeoutMs:
      (numberOption("timeout-min", opts.timeoutMin, { min: 0.05, integer: false }) ?? 15) * 60_000,
  };
}

/** `hailuo run <manifest>`: generate every scene into a run folder. */
export async function runCommand(
  manifestPath: string,
  opts: RunCommandOptions,
  signal: AbortSignal,
): Promise<number> {
  runNumbers(opts);
  const manifest = await loadManifestTelling(manifestPath, {
    vars: parseVars(opts.var),
    json: opts.json,
  });
  const runDir = resolve(opts.out ?? defaultRunDir(manifest));
  if (opts.dryRun) {
    const pending = priceFor(undefined, runNumbers(opts).givenPrice);
    const others = endpointPricesFor(manifest);
    const preview = await previewRun(runDir, manifest, {
      usdPerSecond: pending.then((p) => p.usdPerSecond),
      unitPricesUsd: others.then(unitPricesOf),
      cache: opts.cache,
    });
    const price = await pending;
    const fresh = new Set(preview.toSubmit.map((p) => p.key));
    const regenerate = preview.regenerate.map(({ item, reason }) => ({
      scene: item.sceneId,
      take: item.take,
      usd: item.costUsd,
      reason,
    }));
    if (opts.json) {
      emitJson({
        type: "dry_run",
        runDir: displayPath(runDir),
        clips: preview.items.length,
        reused: preview.reused,
        resumed: preview.resumed,
        new: preview.toSubmit.length,
        atMostUsd: preview.estimateUsd,
        price,
        ...(regenerate.length ? { regenerate } : {}),
      });
      return 0;
    }
    for (const p of preview.items)
      process.stdout.write(
        `${`${p.sceneId}#${p.take}`.padEnd(32)} ${String(p.input.duration ?? "6").padStart(2)} s  ${fresh.has(p.key) ? `$${p.costUsd.toFixed(3)}` : "reused".padEnd(6)}  ${p.input.prompt.slice(0, 70)}\n`,
      );
    for (const r of regenerate)
      process.stdout.write(`regenerate ${r.scene}#${r.take}: ${r.reason} ($${r.usd.toFixed(3)})\n`);
    const anew = regenerate.length
      ? `; ${regenerate.length} of them made anew because what they continue from changed: $${sumUsd(regenerate.map((r) => r.usd)).toFixed(2)}`
      : "";
    process.stdout.write(
      `dry run: ${preview.items.length} clip(s): ${preview.reused} reused, ${preview.resumed} to resume, ${preview.toSubmit.length} new${anew} → at most $${preview.estimateUsd.toFixed(2)} → ${displayPath(runDir)} (nothing submitted)\n${describePrice(price)}\n`,
    );
    for (const [id, q] of await others) process.stdout.write(`${describeEndpointPrice(id, q)}\n`);
    return 0;
  }
  return execute(manifest, runDir, opts, signal);
}

/**
 * `hailuo resume <run>`: pick a run up where it stopped, a folder or a bucket run (its records in
 * Redis: `--redis` or `REDIS_URL`), here in this process.
 */
export async function resumeCommand(
  address: string,
  opts: RunCommandOptions & RunAtOptions,
  signal: AbortSignal,
): Promise<number> {
  const { store, run, close } = await openRunAt(address, opts);
  try {
    // Only looked for here (before fal is connected): the run reads run.json once, under its lock.
    await mustBeRunFolder(store);
    return await execute(undefined, run, opts, signal);
  } finally {
    await close();
  }
}

/**
 * Runs a manifest (`undefined`: the run's own, a resume) into a folder or a bucket run's store
 * with the CLI's view, money lines and media stage; `only` limits the work (re-rolls),
 * `film: false` keeps the film as it is.
 */
export async function execute(
  manifest: Manifest | undefined,
  at: RunAt,
  opts: RunCommandOptions,
  signal: AbortSignal,
  part: { only?: (item: PlanItem) => boolean; film?: false } = {},
): Promise<number> {
  const runDir = typeof at === "string" ? at : at.dir;
  // A bucket run's store; a folder is worked on in place.
  const store = typeof at === "string" || at.kind === "local" ? undefined : at;
  // How the run is named to the user: its folder, or its bucket's address.
  const rel = store?.url ?? displayPath(runDir);
  // What `hailuo resume` needs to find it again: a bucket's records under a prefix of its own.
  const prefix = (opts as RunAtOptions).prefix;
  const again = `${rel}${store && prefix && prefix !== "hailuo" ? ` --prefix ${prefix}` : ""}`;
  const { givenPrice, ...n } = runNumbers(opts);
  const view = await createProgressView(chooseView(Boolean(opts.json)));
  // HTTP retries are counted and told once at the end (per request id with --json), not one line each.
  const retries = new Map<string, number>();
  const conn = await connectFal({
    say: view.line,
    onHttpRetry: (i) => {
      const key = `${i.operation}${i.status ? ` after HTTP ${i.status}` : ""}`;
      retries.set(key, (retries.get(key) ?? 0) + 1);
      if (opts.json)
        emitJson({
          type: "http_retry",
          operation: i.operation,
          attempt: i.attempt,
          status: i.status,
          requestId: i.requestId,
        });
    },
  });
  // run.json records this backend (a run into a folder of another one is refused), so it is the
  // report's: an emulator's amounts are fal's price, and nothing was billed.
  const emulated = conn.backend.kind !== "fal";
  if (emulated) view.emulated();
  // The film is made while the run goes on: each clip's pieces as it lands (one low-priority
  // ffmpeg), so after the last clip only its pieces and the join remain.
  const media = opts.media !== false && part.film !== false;
  // A bucket run's film is made after the run, from the clips its bucket holds.
  const film = media && !store ? filmWhileRunning(runDir, opts, view, signal) : undefined;
  let result: RunResult;
  let over = false;
  try {
    // Asked while the run reads its folder (a round trip to fal's pricing API; the run waits for
    // it only before planning), and told before the plan line.
    const price = priceFor(conn.client, givenPrice).then((p) => {
      // A run refused before planning (run.lock held, another backend) has said why already.
      if (over) return p;
      if (opts.json) emitJson({ type: "price", ...p });
      else
        view.line(
          `${describePrice(p)}${emulated ? ", as the emulator answers it (nothing is billed)" : ""}`,
        );
      return p;
    });
    result = await runManifest({
      priceUsdPerSecond: price,
      assumeListPrice: opts.assumeListPrice,
      manifest,
      runDir: at,
      client: conn.client,
      backend: conn.backend,
      backendOverride: opts.backendOverride,
      takeOver: opts.takeOver,
      ...n,
      cache: opts.cache,
      cancelOnExit: opts.cancelOnExit,
      only: part.only,
      signal,
      confirmSpend: async (plan) => {
        if (
          !mustConfirm({
            billed: conn.backend.kind === "fal",
            usd: plan.estimateUsd,
            yes: opts.yes,
            confirmAbove: opts.confirmAbove,
          })
        )
          return;
        view.pause();
        try {
          await askToSpend(
            `spend up to $${plan.estimateUsd.toFixed(2)} on ${conn.target} for ${plan.toSubmit} clip(s)?`,
          );
        } finally {
          view.resume();
        }
      },
      onEvent: (e: RunEvent) => {
        // Say where requests go and the most it can cost before the first submit.
        if (e.type === "plan" && opts.json)
          emitJson({
            type: "target",
            target: conn.target,
            billed: conn.backend.kind === "fal",
            toSubmit: e.toSubmit,
            atMostUsd: e.estimateUsd,
          });
        else if (e.type === "plan")
          view.line(
            `→ ${conn.target}${conn.backend.kind === "fal" ? " (billed)" : " (nothing billed)"}, ${e.toSubmit} clip(s) to generate, at most $${e.estimateUsd.toFixed(2)}${e.reattach ? `, ${e.reattach} to re-attach` : ""}${e.cached ? `, ${e.cached} reused` : ""}`,
          );
        if (e.type === "item" && (e.phase === "done" || e.phase === "cached"))
          film?.clipReady(e.sceneId);
        view.onEvent(e);
      },
    });
  } catch (error) {
    await film?.close();
    view.stop();
    // The message ends with the exact command that carries on: nothing paid for is lost.
    if (RESUMABLE_STOPS.has((error as HailuoError).code)) {
      (error as Error).message +=
        `\nevery clip paid for so far is journaled (none is paid twice); fix the cause, then resume with: pnpm hailuo resume ${again}`;
    }
    throw error;
  } finally {
    over = true;
    view.stop();
    await conn.close();
  }
  const t = result.report.totals;
  const amounts = result.report.amounts ?? (emulated ? "emulated" : "billed");
  const spent = `this run $${t.thisRunBilledUsd.toFixed(2)}, this folder $${t.billedUsd.toFixed(2)} (${t.billedRequests} clip(s), ${t.billedSeconds} s)`;
  const lines = [
    `${t.done} generated, ${t.cached} reused, ${t.failed} failed${t.interrupted ? `, ${t.interrupted} interrupted` : ""}; ${amounts === "emulated" ? `emulated, nothing billed; at fal's price: ${spent}` : `billed: ${spent}`}`,
    ...(t.unsaved > 0
      ? [
          `${t.unsaved} clip(s) are paid for but not saved; resume downloads them (nothing is paid twice)`,
        ]
      : []),
    ...(t.possibleDoubleChargeUsd > 0
      ? [
          `warning: up to $${t.possibleDoubleChargeUsd.toFixed(2)} more may have been ${amounts === "emulated" ? "counted (emulated, at fal's price)" : "billed"} by ${result.report.ambiguousSubmits.length} submit(s) whose answer was lost (${result.report.ambiguousSubmits.map((a) => `${a.scene}#${a.take}${a.requestId ? ` ${a.requestId}` : ""}`).join(", ")}); see report.json`,
        ]
      : []),
    ...result.report.caveats.map((c) => `warning: ${c.message}`),
    `report: ${store ? `${rel}/report.csv` : join(rel, "report.csv")}`,
    ...(result.interrupted || t.unsaved > 0
      ? [
          `${result.interrupted ? "interrupted: " : ""}nothing paid for is lost. Resume with: pnpm hailuo resume ${again}`,
        ]
      : []),
  ];
  if (retries.size)
    lines.splice(
      1,
      0,
      `http retries inside the fal client: ${[...retries].map(([k, n]) => `${k} ×${n}`).join(", ")}`,
    );
  if (opts.json)
    emitJson({ type: "summary", runDir: rel, exitCode: result.exitCode, totals: { ...t } });
  else process.stderr.write(`${lines.join("\n")}\n`);
  if (opts.media && !result.interrupted && t.done + t.cached > 0) {
    const { mediaStageFor } = await import("./media.js");
    const stage = {
      assemble: part.film ?? (opts.assemble ? true : undefined),
      placeholders: opts.placeholders,
      json: opts.json,
    };
    if (store)
      await onStoreFolder(store, (dir) =>
        mediaStageFor(dir, { ...stage, shownAs: store.url }, signal),
      );
    else await mediaStageFor(runDir, stage, signal, film?.finish);
  } else await film?.close();
  return result.exitCode;
}

/**
 * A film builder fed by the run's events: made once the run has recorded its manifest (the
 * first clip that lands), told of each clip after. Its progress goes to the view the media
 * stage shows once the run is over.
 */
function filmWhileRunning(
  runDir: string,
  opts: RunCommandOptions,
  view: { onEvent: (e: RunEvent) => void },
  signal: AbortSignal,
) {
  let builder: Promise<FilmBuilder | undefined> | undefined;
  let progress: MediaStageOptions["onProgress"];
  const ready = () =>
    (builder ??= Promise.all([import("@hailuo/publish"), readRunManifest(runDir)]).then(
      ([{ createFilmBuilder }, manifest]) =>
        createFilmBuilder({
          runDir,
          manifest,
          assemble: opts.assemble ? true : undefined,
          placeholders: opts.placeholders,
          signal,
          onProgress: (...a) => progress?.(...a),
          onWarning: (message) => view.onEvent({ type: "warning", message }),
        }),
      // No builder, no loss: the media stage makes the whole film after the run.
      () => undefined,
    ));
  return {
    clipReady(sceneId: string) {
      void ready().then((b) => b?.clipReady(sceneId));
    },
    /** Runs the media stage through the builder: what it made ahead is reused. */
    finish: async (o: MediaStageOptions): Promise<MediaStageResult | undefined> => {
      const b = await builder;
      if (!b) return undefined;
      progress = o.onProgress;
      return b.finish();
    },
    async close() {
      await (await builder)?.close();
    },
  };
}
