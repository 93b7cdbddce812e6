import type { Manifest } from "@hailuo/manifest";
import pLimit from "p-limit";
import { clipUnchanged, storedClipIntact } from "./clip-file.js";
import { isFinalFailure, isPaid } from "./item-context.js";
import { readJournal, type StoredRecord } from "./journal-store.js";
import { planRun, sumUsd, type PlanItem } from "./plan.js";
import { replayJournal, type ItemState } from "./run-state.js";
import { readRunFile, storeOf, type RunAt } from "./run-folder.js";
import { carryRerolls, readPicks } from "./picks.js";

/** What a run has to do per generation, decided from the journal and the files on disk. */
export interface WorkPlan {
  /** Generations (by key) whose clip is on disk, whole and unchanged. */
  intact: Set<string>;
  /** Generations that need a new submit. */
  toSubmit: PlanItem[];
  /** Generations that need any work (submit, re-attach, download): what disk space is needed for. */
  toSave: PlanItem[];
  /** Generations with a live request to re-attach to. */
  reattach: PlanItem[];
}

/** Decides per generation: reuse, re-attach, download a paid clip again, or submit. */
export async function planWork(
  at: RunAt,
  unique: PlanItem[],
  states: Map<string, ItemState>,
  cache: boolean,
): Promise<WorkPlan> {
  const store = storeOf(at);
  const intact = new Set<string>();
  // A folder: a stat each; a hash, side by side, only for clips whose file was touched since it
  // was saved. A bucket: a HEAD each, its stored size and SHA-256 (nothing downloaded).
  const toCheck: PlanItem[] = [];
  for (const item of unique) {
    const s = states.get(item.key);
    if (!cache || s?.phase !== "done") continue;
    const quick = store.kind === "local" ? clipUnchanged(store.dir, s.clip) : undefined;
    if (quick) intact.add(item.key);
    else if (quick === undefined) toCheck.push(item);
  }
  const check = pLimit(store.kind === "local" ? 4 : 16);
  await Promise.all(
    toCheck.map((item) =>
      check(
        async () =>
          (await storedClipIntact(store, states.get(item.key)!.clip)) && intact.add(item.key),
      ),
    ),
  );
  const open = unique.filter((i) => !intact.has(i.key) && !isFinalFailure(states.get(i.key)));
  return {
    intact,
    toSubmit: open.filter((i) => !states.get(i.key)?.live && !isPaid(states.get(i.key), cache)),
    toSave: open,
    reattach: open.filter((i) => states.get(i.key)?.live),
  };
}

/** A scene-take a run would make anew although the folder has a clip of it made from other inputs. */
export interface Regeneration {
  item: PlanItem;
  /** Why, in words: another take upstream, a source made anew first, or its own inputs. */
  reason: string;
}

/** What a run into a folder would do now, without doing it (a dry run). */
export interface RunPreview {
  items: PlanItem[];
  /** Scene-takes whose clip the folder already has. */
  reused: number;
  /** Live requests that would be re-attached, and paid clips that would be downloaded again. */
  resumed: number;
  /** New submits, and the most they can cost. */
  toSubmit: PlanItem[];
  estimateUsd: number;
  /**
   * The new submits (in `toSubmit`, their cost in `estimateUsd`) whose scene-take the folder has a
   * clip of already, made from other inputs: after another pick upstream, exactly the scenes that
   * continue from it (and those that continue from them). Empty on a first run.
   */
  regenerate: Regeneration[];
}

/** Scene-takes (`scene#take`) and the generations the journal saw submitted for each that ended with a clip. */
function madeClips(
  records: StoredRecord[],
  states: Map<string, ItemState>,
): Map<string, Set<string>> {
  const made = new Map<string, Set<string>>();
  for (const r of records)
    if (r.t === "submitting" && states.get(r.key)?.phase === "done") {
      const at = `${r.scene}#${r.take}`;
      made.set(at, (made.get(at) ?? new Set()).add(r.key));
    }
  return made;
}

/** Why a generation is made anew although its scene-take has a clip (see `RunPreview.regenerate`). */
function regenerationReason(item: PlanItem): string {
  if (item.lastFrame)
    return `its first frame is now the last frame of ${item.lastFrame.sceneId}#${item.lastFrame.take} (another take upstream)`;
  if (item.awaits) return `it continues ${item.awaits}, which this run makes anew first`;
  return "its inputs changed (prompt, model, settings or an image)";
}

/** Previews a run of `manifest` into a run from its journal and files (nothing is written or sent). */
export async function previewRun(
  at: RunAt,
  manifest: Manifest,
  options: {
    /** The seed's price. @default the list price */
    usdPerSecond?: number | PromiseLike<number>;
    /** Other endpoints' unit prices, by id, in each record's unit. @default their list prices */
    unitPricesUsd?:
      Readonly<Record<string, number>> | PromiseLike<Readonly<Record<string, number>>>;
    cache?: boolean;
    only?: (item: PlanItem) => boolean;
  } = {},
): Promise<RunPreview> {
  // The folder is read while a pending price (a round trip to fal) is still on its way.
  const [previous, journal, picks] = await Promise.all([
    readRunFile(at),
    readJournal(storeOf(at)),
    readPicks(at),
  ]);
  const states = replayJournal(journal.records);
  // As the run will: takes re-rolled in this folder come along, continuing scenes keyed by their
  // source's chosen clip.
  const items = planRun(carryRerolls(manifest, previous?.manifest), await options.usdPerSecond, {
    unitPricesUsd: await options.unitPricesUsd,
    states,
    picks,
  }).filter(options.only ?? (() => true));
  const unique = [...new Map(items.map((p) => [p.key, p])).values()];
  const work = await planWork(at, unique, states, options.cache ?? true);
  const made = madeClips(journal.records, states);
  return {
    items,
    reused: work.intact.size,
    resumed: work.toSave.length - work.toSubmit.length,
    toSubmit: work.toSubmit,
    estimateUsd: sumUsd(work.toSubmit.map((i) => i.costUsd)),
    regenerate: work.toSubmit.flatMap((item) =>
      [...(made.get(`${item.sceneId}#${item.take}`) ?? [])].some((k) => k !== item.key)
        ? [{ item, reason: regenerationReason(item) }]
        : [],
    ),
  };
}
