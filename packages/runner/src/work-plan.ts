import { clipIntact } from "./clip-file.js";
import { isFinalFailure } from "./item-context.js";
import type { PlanItem } from "./plan.js";
import type { ItemState } from "./run-state.js";

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
export async function planWork(runDir: string, unique: PlanItem[], states: Map<string, ItemState>, cache: boolean): Promise<WorkPlan> {
  const intact = new Set<string>();
  for (const item of unique) {
    const s = states.get(item.key);
    if (cache && s?.phase === "done" && (await clipIntact(runDir, s.clip))) intact.add(item.key);
  }
  const paid = (s: ItemState | undefined) => Boolean((s?.phase === "completed" || (s?.phase === "done" && cache)) && s.videoUrl);
  const open = unique.filter((i) => !intact.has(i.key) && !isFinalFailure(states.get(i.key)));
  return {
    intact,
    toSubmit: open.filter((i) => !states.get(i.key)?.live && !paid(states.get(i.key))),
    toSave: open,
    reattach: open.filter((i) => states.get(i.key)?.live),
  };
}
