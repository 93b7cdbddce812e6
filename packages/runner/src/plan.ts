import { createHash } from "node:crypto";
import { estimateCost, type HailuoInput } from "@hailuo/core";
import type { Manifest, Scene } from "@hailuo/manifest";

/** One generation the run must end up with: a scene's take. */
export interface PlanItem {
  /** Hash of the normalised input and take: the identity used by the journal and the cache. */
  key: string;
  sceneId: string;
  /** 1-based. */
  take: number;
  input: HailuoInput;
  costUsd: number;
  /** Position in the manifest, for ordering the film and the report. */
  index: number;
  scene: Scene;
}

/** Identity of a generation: same prompt, duration, optimizer and take → same clip. */
export function inputKey(input: HailuoInput, take: number): string {
  return createHash("sha256")
    .update(JSON.stringify([input.prompt, input.duration, input.prompt_optimizer, take]))
    .digest("hex")
    .slice(0, 20);
}

/** Expands scenes × takes into plan items, in manifest order, priced at `usdPerSecond` (default: the built-in table). */
export function planRun(manifest: Manifest, usdPerSecond?: number): PlanItem[] {
  const items: PlanItem[] = [];
  for (const scene of manifest.scenes) {
    const input: HailuoInput = {
      prompt: scene.prompt,
      duration: scene.duration,
      prompt_optimizer: scene.prompt_optimizer,
    };
    for (let take = 1; take <= scene.takes; take++) {
      items.push({
        key: inputKey(input, take),
        sceneId: scene.id,
        take,
        input,
        costUsd: estimateCost(input, usdPerSecond).usd,
        index: items.length,
        scene,
      });
    }
    // Takes added by `hailuo reroll`, each with the prompt it was asked with.
    for (const r of scene.rerolls ?? []) {
      const rerolled: HailuoInput = { ...input, prompt: r.prompt };
      items.push({
        key: inputKey(rerolled, r.take),
        sceneId: scene.id,
        take: r.take,
        input: rerolled,
        costUsd: estimateCost(rerolled, usdPerSecond).usd,
        index: items.length,
        scene,
      });
    }
  }
  return items;
}

/** Adds up dollars without floating-point drift (micro-dollar integers). */
export function sumUsd(values: Iterable<number>): number {
  let micros = 0;
  for (const v of values) micros += Math.round(v * 1e6);
  return micros / 1e6;
}
