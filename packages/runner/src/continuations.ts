import type { PlanItem } from "./plan.js";
import type { ItemState } from "./run-state.js";

/**
 * The generations that must wait for their `continue_from` source scene before they can be keyed
 * and submitted, sources before the scenes that continue them: those whose source has no chosen
 * clip yet (`awaits`), and those whose source has work in this run (`open`: a new take, a
 * re-roll, a clip to download again may change or restore what it continues from). Every other
 * generation starts at once: an independent scene never waits behind a chain. Pure.
 */
export function waitingForSources(
  items: readonly PlanItem[],
  open: ReadonlySet<string>,
): PlanItem[] {
  const busy = new Set(items.filter((i) => open.has(i.key)).map((i) => i.sceneId));
  const waiting = new Set<PlanItem>();
  // A chain is resolved hop by hop, wherever its scenes stand in the manifest.
  for (let changed = true; changed;) {
    changed = false;
    for (const i of items) {
      const source = i.scene.continueFrom;
      if (!source || waiting.has(i) || !(i.awaits || busy.has(source))) continue;
      waiting.add(i);
      busy.add(i.sceneId);
      changed = true;
    }
  }
  // Hops from a scene that waits for nothing: a source is started before what continues it.
  const sourceOf = new Map([...waiting].map((i) => [i.sceneId, i.scene.continueFrom!]));
  const depth = new Map<string, number>();
  const depthOf = (sceneId: string): number => {
    let d = depth.get(sceneId);
    if (d !== undefined) return d;
    depth.set(sceneId, 0); // a cycle (never in a checked manifest) stops here
    const source = sourceOf.get(sceneId);
    d = source === undefined ? 0 : 1 + depthOf(source);
    depth.set(sceneId, d);
    return d;
  };
  return [...waiting].sort((a, b) => depthOf(a.sceneId) - depthOf(b.sceneId) || a.index - b.index);
}

/** Why a source scene left nothing to continue from, from its generations' states. */
export function whySourceHasNoClip(
  sourceItems: readonly PlanItem[],
  states: ReadonlyMap<string, ItemState>,
): string {
  const errors = sourceItems.flatMap((i) => {
    const e = states.get(i.key)?.error;
    return e ? [`#${i.take} ${e.code}: ${e.message.split("\n")[0]}`] : [];
  });
  if (errors.length) return `it failed: ${errors.join("; ")}`;
  const awaiting = sourceItems.find((i) => i.awaits)?.awaits;
  return awaiting
    ? `it continues from ${awaiting}, which has none either`
    : "it has no finished take";
}

/**
 * Starts every generation of `now` at once, and each of `waiting` (sources first, as
 * `waitingForSources` orders them) once all of its source scene's work in this run has ended,
 * whatever its outcome: `resume` then decides from the states as they stand. Settles when all
 * of it has ended.
 */
export async function runScenes(o: {
  now: readonly PlanItem[];
  waiting: readonly PlanItem[];
  start: (item: PlanItem) => Promise<unknown>;
  resume: (item: PlanItem) => Promise<unknown>;
}): Promise<void> {
  const sceneWork = new Map<string, Promise<unknown>[]>();
  const track = (sceneId: string, work: Promise<unknown>) =>
    sceneWork.set(sceneId, [...(sceneWork.get(sceneId) ?? []), work]);
  for (const item of o.now) track(item.sceneId, o.start(item));
  for (const item of o.waiting) {
    // Its source's work is all tracked by now: sources come first.
    const source = [...(sceneWork.get(item.scene.continueFrom!) ?? [])];
    track(
      item.sceneId,
      Promise.allSettled(source).then(() => o.resume(item)),
    );
  }
  // Every generation ends before this does (the run's ownership is given up after it), even when
  // one of them failed in a way its step did not catch: that failure is thrown then.
  const ended = await Promise.allSettled([...sceneWork.values()].flat());
  const failed = ended.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}
