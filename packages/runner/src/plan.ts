import { createHash } from "node:crypto";
import {
  SEED_ENDPOINT_ID,
  cacheKeyParts,
  effectiveParams,
  endpointOf,
  estimateCost,
  priceOf,
  type ClipResolution,
  type EndpointInput,
  type HailuoInput,
} from "@hailuo/core";
import { takeRequest, type Manifest, type Scene, type TakeRequest } from "@hailuo/manifest";
import { chooseTakes } from "./chosen-take.js";
import type { ClipFacts } from "./journal-store.js";
import type { ItemState } from "./run-state.js";

/**
 * What is sent for a generation, less its image URLs. A seed scene's is exactly
 * `{ prompt, duration, prompt_optimizer }`, as it always was; another endpoint's names it
 * (`endpoint`) and holds the fields its record takes, with `duration` always the clip's length
 * (an endpoint that renders 6 s only takes none: `submit` accepts the fixed value and leaves it out).
 */
export type PlanInput = HailuoInput & { endpoint?: string; resolution?: ClipResolution };

/** The clip a continuing scene's first frame is taken from: its source scene's chosen take. */
export interface LastFrameSource {
  sceneId: string;
  take: number;
  /** The source take's generation. */
  key: string;
  clip: ClipFacts;
}

/** One generation the run must end up with: a scene's take. */
export interface PlanItem {
  /**
   * Hash of the endpoint's cache-key fields and the take: the identity used by the journal and
   * the cache. Images count by content (a file's SHA-256; a continued scene by the SHA-256 of its
   * source's chosen clip; an https URL by the URL), so another pick upstream is another key.
   */
  key: string;
  sceneId: string;
  /** 1-based. */
  take: number;
  input: PlanInput;
  /** The endpoint id (the seed's for a seed scene). */
  endpoint: string;
  /** Where each image field's picture comes from (`takeRequest`); empty for text-to-video. */
  images: TakeRequest["images"];
  /** For `continue_from`: the clip whose last frame is the first frame, once it is known. */
  lastFrame?: LastFrameSource;
  /**
   * Set while the `continue_from` source scene (this id) has no chosen clip: `key` is then
   * provisional (it names the source scene, no clip), and the generation waits for that scene.
   */
  awaits?: string;
  /** Its price at its endpoint's price. */
  costUsd: number;
  /** Position in the manifest, for ordering the film and the report. */
  index: number;
  scene: Scene;
}

/** What a plan is priced and keyed with besides the manifest. */
export interface PlanContext {
  /**
   * The account's unit price per endpoint id, in each record's unit (fal's pricing API
   * `unit_price`); the seed's is `usdPerSecond`. @default each record's list price
   */
  unitPricesUsd?: Readonly<Record<string, number>>;
  /**
   * The run's generations as its journal says (`replayJournal`): a continuing scene is keyed by
   * its source's chosen clip. @default none (every continuing scene awaits its source)
   */
  states?: ReadonlyMap<string, ItemState>;
  /** picks.json's picks (the person's choice of a source's take). @default none */
  picks?: Readonly<Record<string, number>>;
}

/** A manifest's plan, scene by scene, kept so a scene can be planned again once its source is done. */
export interface Planner {
  /** Every generation, in manifest order. */
  items(): PlanItem[];
  /** A scene's generations as planned (empty for an unknown id). */
  scene(sceneId: string): PlanItem[];
  /** A scene's generations planned again from the states as they stand now. */
  refresh(sceneId: string): PlanItem[];
}

function keyOf(parts: unknown[], take: number): string {
  return createHash("sha256")
    .update(JSON.stringify([...parts, take]))
    .digest("hex")
    .slice(0, 20);
}

/** Identity of a seed generation: same prompt, duration, optimizer and take → same clip. */
export function inputKey(input: HailuoInput, take: number): string {
  return keyOf([input.prompt, input.duration, input.prompt_optimizer], take);
}

/**
 * Plans a manifest: scenes × takes (and re-rolled takes), each keyed from its endpoint record's
 * cache-key fields (`cacheKeyParts`: a seed scene's key is the one it always had) and priced at
 * its endpoint's price (`priceOf`; the seed at `usdPerSecond`). A continuing scene is keyed by
 * its source's chosen take (`context.states`, `context.picks`); the source is planned first,
 * wherever it stands in the manifest. Pure.
 */
export function createPlanner(
  manifest: Pick<Manifest, "scenes">,
  usdPerSecond?: number,
  context: PlanContext = {},
): Planner {
  const byId = new Map<string, Scene>();
  const firstIndex = new Map<Scene, number>();
  let n = 0;
  for (const s of manifest.scenes) {
    if (!byId.has(s.id)) byId.set(s.id, s);
    firstIndex.set(s, n);
    n += s.takes + (s.rerolls?.length ?? 0);
  }
  const memo = new Map<Scene, PlanItem[]>();
  // A run.json edited into a cycle never recurses for ever: the scene then awaits.
  const planning = new Set<Scene>();

  const lastFrameOf = (source: Scene): LastFrameSource | undefined => {
    const states = context.states;
    if (!states || planning.has(source)) return undefined;
    const withClip = plan(source).flatMap((i) => {
      const s = states.get(i.key);
      return s?.phase === "done" && s.clip
        ? [{ scene: source.id, sceneId: source.id, take: i.take, key: i.key, clip: s.clip }]
        : [];
    });
    const chosen = chooseTakes([source], withClip, context.picks ?? {}).get(source.id);
    return (
      chosen && { sceneId: chosen.sceneId, take: chosen.take, key: chosen.key, clip: chosen.clip }
    );
  };

  const item = (
    scene: Scene,
    prompt: string,
    take: number,
    index: number,
    frame: LastFrameSource | undefined,
  ): PlanItem => {
    const seed = !scene.endpoint || scene.endpoint === SEED_ENDPOINT_ID;
    if (seed) {
      const input: HailuoInput = {
        prompt,
        duration: scene.duration,
        prompt_optimizer: scene.prompt_optimizer,
      };
      return {
        key: keyOf(cacheKeyParts(SEED_ENDPOINT_ID, input), take),
        sceneId: scene.id,
        take,
        input,
        endpoint: SEED_ENDPOINT_ID,
        images: {},
        costUsd: estimateCost(input, usdPerSecond).usd,
        index,
        scene,
      };
    }
    const request = takeRequest(scene, prompt);
    const { endpoint, ...body } = request.input;
    const hashes: Record<string, string> = {};
    let awaits: string | undefined;
    for (const [field, slot] of Object.entries(request.images)) {
      if (slot.kind === "file") hashes[field] = slot.sha256;
      else if (slot.kind === "url") hashes[field] = slot.url;
      else if (frame) hashes[field] = `last-frame:${frame.clip.sha256}`;
      else hashes[field] = `awaiting:${(awaits = slot.sceneId)}`;
    }
    const keyed = { ...body, ...hashes } as unknown as EndpointInput;
    const params = effectiveParams(endpointOf(endpoint), body);
    const input: PlanInput = { endpoint, ...body, duration: params.duration };
    return {
      key: keyOf(
        cacheKeyParts(endpoint, keyed, (_url, field) => hashes[field]!),
        take,
      ),
      sceneId: scene.id,
      take,
      input,
      endpoint,
      images: request.images,
      ...(frame && request.images.image_url?.kind === "last-frame" ? { lastFrame: frame } : {}),
      ...(awaits ? { awaits } : {}),
      costUsd: priceOf(endpoint, input, { unitPriceUsd: context.unitPricesUsd?.[endpoint] }).usd,
      index,
      scene,
    };
  };

  const planScene = (scene: Scene): PlanItem[] => {
    planning.add(scene);
    try {
      const source = scene.continueFrom ? byId.get(scene.continueFrom) : undefined;
      const frame = source && lastFrameOf(source);
      const at = firstIndex.get(scene) ?? 0;
      const items: PlanItem[] = [];
      for (let take = 1; take <= scene.takes; take++)
        items.push(item(scene, scene.prompt, take, at + items.length, frame));
      // Takes added by `hailuo reroll`, each with the prompt it was asked with.
      for (const r of scene.rerolls ?? [])
        items.push(item(scene, r.prompt, r.take, at + items.length, frame));
      return items;
    } finally {
      planning.delete(scene);
    }
  };

  function plan(scene: Scene): PlanItem[] {
    let items = memo.get(scene);
    if (!items) memo.set(scene, (items = planScene(scene)));
    return items;
  }

  return {
    items: () => manifest.scenes.flatMap(plan),
    scene(sceneId) {
      const scene = byId.get(sceneId);
      return scene ? plan(scene) : [];
    },
    refresh(sceneId) {
      const scene = byId.get(sceneId);
      if (!scene) return [];
      memo.delete(scene);
      return plan(scene);
    },
  };
}

/**
 * Expands scenes × takes into plan items, in manifest order, priced at `usdPerSecond` for the
 * seed (default: the built-in table) and `context.unitPricesUsd` for other endpoints.
 */
export function planRun(
  manifest: Manifest,
  usdPerSecond?: number,
  context: PlanContext = {},
): PlanItem[] {
  return createPlanner(manifest, usdPerSecond, context).items();
}

/** The endpoints a plan uses, the seed first when it is used. */
export function planEndpoints(items: Iterable<Pick<PlanItem, "endpoint">>): string[] {
  const ids = new Set<string>();
  for (const i of items) ids.add(i.endpoint);
  return [...ids].sort((a, b) => Number(b === SEED_ENDPOINT_ID) - Number(a === SEED_ENDPOINT_ID));
}

/** Adds up dollars without floating-point drift (micro-dollar integers). */
export function sumUsd(values: Iterable<number>): number {
  let micros = 0;
  for (const v of values) micros += Math.round(v * 1e6);
  return micros / 1e6;
}
