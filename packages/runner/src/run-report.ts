import { relative, resolve } from "node:path";
import type { Manifest } from "@hailuo/manifest";
import type { ItemOutcome } from "./item-context.js";
import { readJournal, type JournalDamage, type StoredRecord } from "./journal-store.js";
import { ledgerOf } from "./ledger.js";
import { planRun, sumUsd, type PlanItem } from "./plan.js";
import { amountsOf, type ItemReport, type ReportCaveat, type RunReport } from "./report.js";
import { notARun, readRunFile, runName, storeOf, type Backend, type RunAt } from "./run-folder.js";
import { replayJournal, type ItemState } from "./run-state.js";
import { markChosen, readPicks } from "./picks.js";

/** Options of `buildReport`. */
export interface BuildReportOptions {
  /** How each generation ended in the run being reported (absent: read from the journal). */
  outcome?: Map<string, ItemOutcome>;
  /** Index of the first journal record written by the run being reported. @default 0 */
  thisRunFrom?: number;
  /** Price for records that lack one (journals from before prices were journaled). */
  usdPerSecond?: number;
  /** Other endpoints' unit prices, for the same (each record's unit). @default list prices */
  unitPricesUsd?: Readonly<Record<string, number>>;
  /** The manifest's plan when the caller has it already (`planRun(manifest, usdPerSecond)`). */
  plan?: PlanItem[];
  /** picks.json's picks, to mark the takes the film uses. */
  picks?: Record<string, number>;
  /** `replayJournal(records)` when the caller has it (the run replays only what it touched). */
  states?: Map<string, ItemState>;
  /** The journal's damaged lines (`readJournal`): amounts they may have held are not vouched for. */
  damaged?: JournalDamage[];
  /** Caveats the caller knows of (an unverified price). */
  caveats?: ReportCaveat[];
  /** Where the run's requests went (run.json's backend): says whether its amounts were billed. */
  backend?: Backend;
}

/** One caveat per run into the folder (and endpoint) that priced at the list price because fal could not confirm the account's. */
function priceCaveats(records: StoredRecord[]): ReportCaveat[] {
  return records.flatMap((r) =>
    r.t === "run"
      ? [
          ...(r.priceUnverified
            ? [
                {
                  kind: "price_unverified" as const,
                  message: `the run of ${r.at} priced at $${r.usdPerSecond}/s, the list price, because fal's pricing API could not confirm the account's (${r.priceUnverified}): its amounts are estimates, not verified`,
                },
              ]
            : []),
          ...Object.entries(r.pricesUnverified ?? {}).map(([id, why]) => ({
            kind: "price_unverified" as const,
            message: `the run of ${r.at} priced ${id} at its list price ($${r.unitPricesUsd?.[id]} per its unit), because fal's pricing API could not confirm the account's (${why}): its amounts are estimates, not verified`,
          })),
        ]
      : [],
  );
}

/** One caveat per clip adopted from disk whose request fal's request list could not confirm. */
function recoveryCaveats(records: StoredRecord[], byKey: Map<string, PlanItem>): ReportCaveat[] {
  return records.flatMap((r) => {
    const p = r.t === "recovered" && r.via === "disk" ? byKey.get(r.key) : undefined;
    if (!p || r.t !== "recovered") return [];
    const message = `${p.sceneId}#${p.take}: clip ${r.file} was adopted from disk after its journal records were lost; its request (${r.requestId}…) and cost ($${r.usd.toFixed(2)}) are the file name's and the price's word, not fal's`;
    return [{ kind: "clip_recovered" as const, message, scene: p.sceneId, take: p.take }];
  });
}

/** One caveat per damaged journal line, naming the generation its text still names. */
function damageCaveats(damaged: JournalDamage[], plan: PlanItem[]): ReportCaveat[] {
  const byKey = new Map(plan.map((p) => [p.key, p]));
  return damaged.map((d) => {
    const p = d.key ? byKey.get(d.key) : undefined;
    const what = `${d.record ? `a "${d.record}" record` : "a record"}${p ? ` of ${p.sceneId}#${p.take}` : d.key ? ` of generation ${d.key}` : ""}`;
    const scope = p ? `${p.sceneId}#${p.take}'s amounts` : "the folder's totals";
    return {
      kind: "journal_damaged",
      line: d.line,
      message: `journal line ${d.line} is damaged (${what} may be lost there): ${scope} cannot be vouched for`,
      ...(p ? { scene: p.sceneId, take: p.take } : {}),
    };
  });
}

/**
 * The newest clip the journal saw made for each take of a continuing scene (`scene#take`), by
 * the generation that made it: what the folder still holds of a take whose key moved on.
 */
function madeTakes(
  records: StoredRecord[],
  states: Map<string, ItemState>,
): Map<string, ItemState> {
  const made = new Map<string, ItemState>();
  for (const r of records) {
    const s = r.t === "submitting" ? states.get(r.key) : undefined;
    const at = r.t === "submitting" ? `${r.scene}#${r.take}` : "";
    if (s?.phase !== "done" || !s.clip) continue;
    const known = made.get(at);
    if (!known || (known.lastAt ?? "") <= (s.lastAt ?? "")) made.set(at, s);
  }
  return made;
}

/** Why a continuing scene's clip no longer fits its plan (see `ItemReport.stale`). */
function staleReason(p: PlanItem): string {
  return p.lastFrame
    ? `made from the last frame of another take of ${p.lastFrame.sceneId}, whose chosen take is now #${p.lastFrame.take}: \`hailuo run\` makes it anew`
    : `made from an earlier clip of ${p.awaits ?? p.scene.continueFrom}, which has none for its inputs now: \`hailuo run\` makes both anew`;
}

/** Builds the report of a run folder from its manifest and journal: one row per scene-take, money from the ledger. */
export function buildReport(
  manifest: Manifest,
  runDir: string,
  records: StoredRecord[],
  options: BuildReportOptions = {},
): RunReport {
  const { outcome = new Map() } = options;
  const thisRunFrom = options.thisRunFrom ?? 0;
  const states =
    options.states ?? replayJournal(records, new Map(), { thisRun: (_r, i) => i >= thisRunFrom });
  // A continuing scene's row is the take made from its source's chosen clip (as a run keys it).
  const plan =
    options.plan ??
    planRun(manifest, options.usdPerSecond, {
      unitPricesUsd: options.unitPricesUsd,
      states,
      picks: options.picks ?? {},
    });
  const byKey = new Map(plan.map((p) => [p.key, p]));
  const ledger = ledgerOf(states.values(), {
    estimate: (k) => byKey.get(k)?.costUsd ?? 0,
    secondsOf: (k) => Number(byKey.get(k)?.input.duration ?? 0),
  });
  const caveats = [
    ...priceCaveats(records),
    ...(options.caveats ?? []),
    ...damageCaveats(options.damaged ?? [], plan),
    ...recoveryCaveats(records, byKey),
  ];
  const caveatOf = new Map(
    caveats.filter((c) => c.scene).map((c) => [`${c.scene}#${c.take}`, c.message]),
  );
  const billedByKey = new Map<string, number[]>();
  for (const r of ledger.requests)
    if (r.fate === "billed") billedByKey.set(r.key, [...(billedByKey.get(r.key) ?? []), r.usd]);
  const ambiguousByKey = new Map<string, number[]>();
  for (const a of ledger.ambiguous)
    ambiguousByKey.set(a.key, [...(ambiguousByKey.get(a.key) ?? []), a.usd]);

  // Only a run with continuing scenes looks for clips made under earlier keys.
  const made = plan.some((p) => p.scene.continueFrom) ? madeTakes(records, states) : undefined;
  const firstScene = new Map<string, string>();
  const items: ItemReport[] = plan.map((p: PlanItem) => {
    const mine = states.get(p.key);
    // Nothing made or tried for its key, but a clip of the take from before another pick upstream.
    const untried = (!mine || mine.phase === "new") && !mine?.requests.length && !mine?.live;
    const earlier =
      made && p.scene.continueFrom && untried ? made.get(`${p.sceneId}#${p.take}`) : undefined;
    const s = earlier ?? mine;
    const first = firstScene.get(p.key);
    if (!first) firstScene.set(p.key, `${p.sceneId}#${p.take}`);
    const status: ItemReport["status"] = earlier
      ? (outcome.get(p.key) ?? "cached")
      : (outcome.get(p.key) ??
        (s?.phase === "done"
          ? "done"
          : s?.phase === "failed" || s?.unsaved
            ? "failed"
            : s?.live
              ? "interrupted"
              : "pending"));
    // A row reusing another row's clip (same input) costs nothing: the money is on the first row.
    const own = (m: Map<string, number[]>) => (first ? 0 : sumUsd(m.get(p.key) ?? []));
    const row: ItemReport = {
      scene: p.sceneId,
      take: p.take,
      key: p.key,
      status,
      requestId: s?.clips.at(-1)?.requestId ?? s?.requestIds.at(-1),
      requestIds: s?.requestIds ?? [],
      attempts: s?.attempts ?? 0,
      seconds: s?.clip?.durationS,
      costUsd: own(billedByKey),
      ambiguousSubmits: first ? 0 : (ambiguousByKey.get(p.key)?.length ?? 0),
      possibleDoubleChargeUsd: own(ambiguousByKey),
      file: s?.phase === "done" ? s.clip?.file : undefined,
      ...(s?.phase === "done" && s.clip?.video
        ? { video: { ...s.clip.video, bytes: s.clip.bytes } }
        : {}),
      prompt: p.input.prompt,
      duration: p.input.duration,
    };
    if (s?.unsaved && s.phase !== "done") {
      row.unsaved = true;
      row.error = `paid for, not saved: ${s.unsaved.message}`;
      row.errorCode = s.unsaved.code;
    } else if (status === "failed" && s?.error) {
      row.error = s.error.message;
      row.errorCode = s.error.code;
    }
    if (first) row.sameAs = first;
    if (earlier) row.stale = staleReason(p);
    const caveat = caveatOf.get(`${p.sceneId}#${p.take}`);
    if (caveat) row.caveat = caveat;
    return row;
  });
  markChosen(manifest, items, options.picks ?? {});
  const count = (st: ItemReport["status"]) => items.filter((i) => i.status === st).length;
  const { folder, thisRun } = ledger;
  return {
    name: manifest.name,
    amounts: amountsOf(options.backend),
    manifest: manifest.file,
    // A bucket's address is shown as given; a folder relative to where the command runs.
    runDir: /^s3:\/\//.test(runDir) ? runDir : relative(process.cwd(), runDir) || ".",
    generatedAt: new Date().toISOString(),
    totals: {
      items: items.length,
      done: count("done"),
      cached: count("cached"),
      failed: count("failed"),
      interrupted: count("interrupted"),
      pending: count("pending"),
      unsaved: items.filter((i) => i.unsaved).length,
      billedUsd: folder.billedUsd,
      billedSeconds: folder.billedSeconds,
      billedRequests: folder.billedRequests,
      thisRunBilledUsd: thisRun.billedUsd,
      possibleDoubleChargeUsd: folder.possibleDoubleChargeUsd,
      thisRunPossibleDoubleChargeUsd: thisRun.possibleDoubleChargeUsd,
      inFlightUsd: folder.inFlightUsd,
      reusedClips: items.filter((i) => i.status === "cached").length,
      reconciledSubmits: folder.reconciled,
    },
    caveats,
    ambiguousSubmits: ledger.ambiguous.map(({ scene, take, requestId, usd, reason }) => ({
      scene,
      take,
      requestId,
      usd,
      reason,
    })),
    items,
  };
}

/**
 * The report of a run folder as it stands now, from run.json and the journal (no network), saying
 * whether its amounts were billed or emulated (run.json's backend).
 */
export async function readRunReport(at: RunAt, manifest?: Manifest): Promise<RunReport> {
  const run = typeof at === "string" ? resolve(at) : at;
  const file = await readRunFile(run);
  if (!file) throw notARun(runName(run));
  const { records, damaged } = await readJournal(storeOf(run));
  return buildReport(manifest ?? file.manifest, runName(run), records, {
    picks: await readPicks(run),
    damaged,
    backend: file.backend,
  });
}
