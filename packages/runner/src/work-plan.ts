import type { Manifest } from "@hailuo/manifest";
import pLimit from "p-limit";
import { clipIntact, clipUnchanged } from "./clip-file.js";
import { isFinalFailure, isPaid } from "./item-context.js";
import { journalPath, readJournal } from "./journal-store.js";
import { planRun, sumUsd, type PlanItem } from "./plan.js";
import { replayJournal, type ItemState } from "./run-state.js";
import { readRunFile } from "./run-folder.js";
import { carryRerolls } from "./picks.js";

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
  runDir: string,
  unique: PlanItem[],
  states: Map<string, ItemState>,
  cache: boolean,
): Promise<WorkPlan> {
  const intact = new Set<string>();
  // A stat each; a hash, side by side, only for clips whose file was touched since it was saved.
  const toHash: PlanItem[] = [];
  for (const item of unique) {
    const s = states.get(item.key);
    if (!cache || s?.phase !== "done") continue;
    const quick = clipUnchanged(runDir, s.clip);
    if (quick) intact.add(item.key);
    else if (quick === undefined) toHash.push(item);
  }
  const hash = pLimit(4);
  await Promise.all(
    toHash.map((item) =>
      hash(
        async () => (await clipIntact(runDir, states.get(item.key)!.clip)) && intact.add(item.key),
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
}

/** Previews a run of `manifest` into `runDir` from its journal and files (nothing is written or sent). */
export async function previewRun(
  runDir: string,
  manifest: Manifest,
  options: {
    usdPerSecond?: number | PromiseLike<number>;
    cache?: boolean;
    only?: (item: PlanItem) => boolean;
  } = {},
): Promise<RunPreview> {
  // The folder is read while a pending price (a round trip to fal) is still on its way.
  const [previous, journal] = await Promise.all([
    readRunFile(runDir),
    readJournal(journalPath(runDir)),
  ]);
  // As the run will: takes re-rolled in this folder come along.
  const items = planRun(
    carryRerolls(manifest, previous?.manifest),
    await options.usdPerSecond,
  ).filter(options.only ?? (() => true));
  const unique = [...new Map(items.map((p) => [p.key, p])).values()];
  const states = replayJournal(journal.records);
  const work = await planWork(runDir, unique, states, options.cache ?? true);
  return {
    items,
    reused: work.intact.size,
    resumed: work.toSave.length - work.toSubmit.length,
    toSubmit: work.toSubmit,
    estimateUsd: sumUsd(work.toSubmit.map((i) => i.costUsd)),
  };
}
