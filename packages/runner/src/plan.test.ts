import { copyFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadManifest, parseManifest, type Manifest } from "@hailuo/manifest";
import { makeTempDir } from "@hailuo/test-utils";
import { waitingForSources } from "./continuations.js";
import type { StoredRecord } from "./journal-store.js";
import { inputKey, planRun, type PlanItem } from "./plan.js";
import { applyRecord, newItemState, type ItemState } from "./run-state.js";
import { I2V_02, SEED, T2V_23, mixedManifest } from "./test-family.js";

// The plan decides what is paid for: its keys are tested against what they were before the
// family came (journals and caches of seed runs must keep matching) and against every way an
// input can change.

let tmp: { dir: string; cleanup: () => Promise<void> };
let mixed: Manifest;
beforeAll(async () => {
  tmp = await makeTempDir();
  mixed = await mixedManifest(tmp.dir);
});
afterAll(() => tmp.cleanup());

/** A generation whose clip (with this SHA-256) is on disk, as the journal's reducer says. */
const doneState = (key: string, sha256: string): ItemState =>
  applyRecord(newItemState(key), {
    t: "done",
    key,
    requestId: `req-${sha256}`,
    file: `clips/${key}.mp4`,
    bytes: 1,
    sha256,
    durationS: 6,
    width: 1366,
    height: 768,
    at: "2026-01-01T00:00:00Z",
  } as StoredRecord & { key: string });

const byTake = (items: PlanItem[]) =>
  Object.fromEntries(items.map((i) => [`${i.sceneId}#${i.take}`, i]));

describe("planRun", () => {
  it("keeps a seed scene's key, input and price exactly as they were", () => {
    const m = parseManifest(
      `name: seed
scenes:
  - id: a
    prompt: A quiet forest clearing at noon
  - id: b
    prompt: Rain on a window, slow drops
    duration: 10
    prompt_optimizer: false
    takes: 2
  - id: c
    prompt: A quiet forest clearing at noon
    model: ${SEED}
`,
      { file: "seed.yaml" },
    );
    const items = planRun(m);
    // Literals computed by the runner before endpoints were records: journals hold these keys.
    expect(items.map((i) => i.key)).toEqual([
      "ff4eff288afb45b49eef",
      inputKey(
        { prompt: "Rain on a window, slow drops", duration: "10", prompt_optimizer: false },
        1,
      ),
      "8eaffa8c2cf302db04c2",
      "ff4eff288afb45b49eef",
    ]);
    // The body sent (and the emulator's hash of it) is the seed's three fields, in their order.
    for (const i of items) {
      expect(Object.keys(i.input)).toEqual(["prompt", "duration", "prompt_optimizer"]);
      expect([i.endpoint, i.images, i.awaits, i.lastFrame]).toEqual([
        SEED,
        {},
        undefined,
        undefined,
      ]);
    }
    expect(items.map((i) => i.costUsd)).toEqual([0.27, 0.45, 0.45, 0.27]);
    expect(planRun(m, 0.05).map((i) => i.costUsd)).toEqual([0.3, 0.5, 0.5, 0.3]);
  });

  it("keys and prices each endpoint by its own record", () => {
    const items = byTake(planRun(mixed));
    expect(
      Object.values(items).map((i) => [i.sceneId, i.take, i.endpoint, i.input.duration]),
    ).toEqual([
      ["dawn", 1, SEED, "10"],
      ["gull", 1, I2V_02, "6"],
      ["gull", 2, I2V_02, "6"],
      ["boat", 1, I2V_02, "6"],
      ["night", 1, T2V_23, "6"],
      ["wake", 1, I2V_02, "6"],
    ]);
    expect(items["boat#1"]!.input).toEqual({
      endpoint: I2V_02,
      prompt: "A boat crosses from start to end",
      duration: "6",
      resolution: "768P",
      prompt_optimizer: true,
    });
    // List prices: per second on Hailuo 02, per video on Hailuo 2.3.
    expect(Object.values(items).map((i) => i.costUsd)).toEqual([
      0.45, 0.27, 0.27, 0.27, 0.28, 0.27,
    ]);
    const priced = planRun(mixed, 0.05, { unitPricesUsd: { [I2V_02]: 0.06, [T2V_23]: 0.3 } });
    expect(priced.map((i) => i.costUsd)).toEqual([0.5, 0.36, 0.36, 0.36, 0.3, 0.36]);
    // The same prompt on another endpoint is another clip.
    const night = mixed.scenes.find((s) => s.id === "night")!;
    const asSeed = planRun({
      ...mixed,
      scenes: [{ ...night, endpoint: undefined, resolution: undefined }],
    });
    expect(asSeed[0]!.key).not.toBe(items["night#1"]!.key);
    expect(new Set(Object.values(items).map((i) => i.key)).size).toBe(6);
  });

  it("counts an image by its content, not its name", async () => {
    const dir = join(tmp.dir, "content");
    const base = await mixedManifest(dir);
    const boat = (m: Manifest) => planRun(m).find((i) => i.sceneId === "boat")!.key;
    await copyFile(join(dir, "images", "start.png"), join(dir, "images", "same.png"));
    const yaml = (start: string) =>
      `name: c\nscenes:\n  - id: boat\n    prompt: A boat crosses from start to end\n` +
      `    image: images/${start}\n    end_image: images/end.png\n`;
    await writeFile(join(dir, "renamed.yaml"), yaml("same.png"));
    expect(boat(await loadManifest(join(dir, "renamed.yaml")))).toBe(boat(base));
    await copyFile(join(dir, "images", "end.png"), join(dir, "images", "other.png"));
    await writeFile(join(dir, "other.yaml"), yaml("other.png"));
    expect(boat(await loadManifest(join(dir, "other.yaml")))).not.toBe(boat(base));
  });

  it("keys a continuing scene by its source's chosen clip: another pick upstream, another key", () => {
    // Nothing done yet: both continuing scenes wait, under keys that name their source only.
    const bare = byTake(planRun(mixed));
    expect([bare["gull#1"]!.awaits, bare["gull#2"]!.awaits, bare["wake#1"]!.awaits]).toEqual([
      "dawn",
      "dawn",
      "gull",
    ]);
    const states = new Map<string, ItemState>();
    const plan = (picks: Record<string, number> = {}) =>
      byTake(planRun(mixed, undefined, { states, picks }));
    states.set(bare["dawn#1"]!.key, doneState(bare["dawn#1"]!.key, "a".repeat(64)));
    const p1 = plan();
    expect(p1["gull#1"]!.awaits).toBeUndefined();
    expect(p1["gull#1"]!.lastFrame).toMatchObject({ sceneId: "dawn", take: 1 });
    expect(p1["gull#1"]!.key).not.toBe(bare["gull#1"]!.key);
    expect(p1["wake#1"]!.awaits).toBe("gull");
    // Both takes of gull done: wake continues the first finished, or the one picked.
    states.set(p1["gull#1"]!.key, doneState(p1["gull#1"]!.key, "b".repeat(64)));
    states.set(p1["gull#2"]!.key, doneState(p1["gull#2"]!.key, "c".repeat(64)));
    const first = plan()["wake#1"]!;
    const picked = plan({ gull: 2 })["wake#1"]!;
    expect(first.lastFrame).toMatchObject({ sceneId: "gull", take: 1 });
    expect(picked.lastFrame).toMatchObject({ sceneId: "gull", take: 2 });
    expect(picked.key).not.toBe(first.key);
    expect(plan({ gull: 1 })["wake#1"]!.key).toBe(first.key);
    // Scenes that continue nothing never move.
    for (const id of ["dawn#1", "boat#1", "night#1"])
      expect(plan({ gull: 2 })[id]!.key).toBe(bare[id]!.key);
    // The key follows the source clip's bytes, not its take's number.
    states.set(p1["gull#1"]!.key, doneState(p1["gull#1"]!.key, "d".repeat(64)));
    expect(plan()["wake#1"]!.key).not.toBe(first.key);
  });
});

describe("waitingForSources", () => {
  it("holds back exactly the scenes downstream of open work, sources first", () => {
    const bare = planRun(mixed);
    const ids = (items: PlanItem[]) => items.map((i) => `${i.sceneId}#${i.take}`);
    // Nothing resolved: gull and wake wait (gull first); boat and night start at once.
    expect(ids(waitingForSources(bare, new Set()))).toEqual(["gull#1", "gull#2", "wake#1"]);
    const states = new Map<string, ItemState>();
    for (const i of bare.filter((i) => i.sceneId === "dawn"))
      states.set(i.key, doneState(i.key, "a".repeat(64)));
    const gullKnown = planRun(mixed, undefined, { states });
    for (const i of gullKnown.filter((i) => i.sceneId === "gull"))
      states.set(i.key, doneState(i.key, i.take === 1 ? "b".repeat(64) : "c".repeat(64)));
    const all = planRun(mixed, undefined, { states });
    expect(ids(waitingForSources(all, new Set()))).toEqual([]);
    // A new take of gull in this run: wake waits for it (a re-roll could change its source).
    const gull2 = all.find((i) => i.sceneId === "gull" && i.take === 2)!;
    expect(ids(waitingForSources(all, new Set([gull2.key])))).toEqual(["wake#1"]);
    // dawn to download again: the whole chain waits.
    const dawn = all.find((i) => i.sceneId === "dawn")!;
    expect(ids(waitingForSources(all, new Set([dawn.key])))).toEqual([
      "gull#1",
      "gull#2",
      "wake#1",
    ]);
  });
});
