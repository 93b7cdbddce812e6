import type { Manifest, Reroll } from "@hailuo/manifest";
import { HailuoError } from "@hailuo/shared";
import type { ItemReport } from "./report.js";
import { normalizeHailuoInput } from "@hailuo/core";
import { chooseTakes } from "./chosen-take.js";
import { readJournal } from "./journal-store.js";
import { planRun, sumUsd } from "./plan.js";
import { replayJournal } from "./run-state.js";
import { readRunManifest, storeOf, type RunAt } from "./run-folder.js";

/** picks.json: the take each scene's film uses, chosen by a person (`hailuo pick`, the review page). */
export interface PicksFile {
  version: 1;
  picks: Record<string, number>;
}

/** The picks of a run (none yet: empty). */
export async function readPicks(at: RunAt): Promise<Record<string, number>> {
  const store = storeOf(at);
  const text = await store.readDocument("picks.json").catch((error: unknown) => {
    if (store.kind !== "local") throw error;
    return undefined;
  });
  if (text === undefined) return {};
  return (JSON.parse(text) as PicksFile).picks ?? {};
}

/** Records one pick (atomically: a crash leaves the old file or the new one). */
export async function writePick(at: RunAt, scene: string, take: number): Promise<void> {
  const picks = { ...(await readPicks(at)), [scene]: take };
  await storeOf(at).writeDocument(
    "picks.json",
    `${JSON.stringify({ version: 1, picks } satisfies PicksFile, null, 2)}\n`,
  );
}

/**
 * The take the film uses for each scene, among takes that have a clip (`chooseTakes`: the
 * person's pick, the newest re-roll, `pick:`, the first finished). A scene with no clip maps to
 * undefined.
 */
export function chosenTakes(
  manifest: Manifest,
  items: ItemReport[],
  picks: Record<string, number>,
): Map<string, ItemReport | undefined> {
  return chooseTakes(
    manifest.scenes,
    items.filter((i) => i.file),
    picks,
  );
}

/** Marks `chosen` on the report rows the film uses. */
export function markChosen(
  manifest: Manifest,
  items: ItemReport[],
  picks: Record<string, number>,
): void {
  const chosen = new Set(chosenTakes(manifest, items, picks).values());
  for (const i of items) i.chosen = chosen.has(i) || undefined;
}

/**
 * Carries takes added by `hailuo reroll` over to a manifest run again into the same folder (the
 * manifest file knows nothing of them, and they are paid clips a person may have picked).
 */
export function carryRerolls(manifest: Manifest, previous: Manifest | undefined): Manifest {
  const before = new Map((previous?.scenes ?? []).map((s) => [s.id, s.rerolls]));
  return {
    ...manifest,
    scenes: manifest.scenes.map((s) =>
      s.rerolls || !before.get(s.id)?.length ? s : { ...s, rerolls: before.get(s.id) },
    ),
  };
}

/** Adds `count` takes to a scene (numbered after its last one), with an edited prompt or its own. */
export function withRerolls(
  manifest: Manifest,
  sceneId: string,
  count: number,
  prompt?: string,
  at = new Date(),
): { manifest: Manifest; added: Reroll[] } {
  const scene = manifest.scenes.find((s) => s.id === sceneId);
  if (!scene)
    throw new HailuoError(
      "usage",
      `no scene ${sceneId} in this run (scenes: ${manifest.scenes.map((s) => s.id).join(", ")})`,
    );
  const last = Math.max(scene.takes, ...(scene.rerolls ?? []).map((r) => r.take));
  const added = Array.from({ length: count }, (_, i) => ({
    take: last + 1 + i,
    prompt: prompt ?? scene.prompt,
    at: at.toISOString(),
  }));
  const scenes = manifest.scenes.map((s) =>
    s === scene ? { ...s, rerolls: [...(s.rerolls ?? []), ...added] } : s,
  );
  return { manifest: { ...manifest, scenes }, added };
}

/** What a re-roll would add and cost, computed without recording anything. */
export interface RerollQuote {
  /** The run's manifest with the new takes recorded (what `runManifest` runs). */
  manifest: Manifest;
  added: Reroll[];
  /** The new takes' generations (pass to `runManifest`'s `only`). */
  keys: string[];
  usd: number;
}

/**
 * Quotes `count` more takes of `scene` (with an edited `prompt`, normalised as a submit would)
 * at `usdPerSecond`: the new takes as the run will plan them, one expansion of re-rolls.
 */
export async function quoteReroll(
  at: RunAt,
  scene: string,
  count: number,
  options: {
    prompt?: string;
    usdPerSecond?: number;
    /** Other endpoints' unit prices, by id. @default their list prices */
    unitPricesUsd?: Readonly<Record<string, number>>;
  } = {},
): Promise<RerollQuote> {
  const [manifest, journal, picks] = await Promise.all([
    readRunManifest(at),
    readJournal(storeOf(at)),
    readPicks(at),
  ]);
  const edited =
    options.prompt === undefined
      ? undefined
      : normalizeHailuoInput({ prompt: options.prompt, duration: "6" }).prompt;
  const { manifest: next, added } = withRerolls(manifest, scene, count, edited);
  const takes = new Set(added.map((r) => r.take));
  // Keyed as the run will key them: a continuing scene by its source's chosen clip.
  const items = planRun(next, options.usdPerSecond, {
    unitPricesUsd: options.unitPricesUsd,
    states: replayJournal(journal.records),
    picks,
  }).filter((p) => p.sceneId === scene && takes.has(p.take));
  return {
    manifest: next,
    added,
    keys: items.map((p) => p.key),
    usd: sumUsd(items.map((p) => p.costUsd)),
  };
}
