import { describe, expect, it } from "vitest";
import { parseManifest } from "@hailuo/manifest";
import { carryRerolls, chosenTakes, withRerolls } from "./picks.js";
import { planRun } from "./plan.js";
import type { ItemReport } from "./report.js";

const manifest = parseManifest(
  "name: p\ndefaults: { takes: 3 }\nscenes:\n  - id: a\n    prompt: scene a\n    pick: 2\n  - id: b\n    prompt: scene b\n",
  { file: "p.yaml" },
);
const row = (scene: string, take: number, file?: string): ItemReport => ({
  scene,
  take,
  key: `${scene}${take}`,
  status: file ? "done" : "failed",
  requestIds: [],
  attempts: 1,
  costUsd: 0,
  ambiguousSubmits: 0,
  possibleDoubleChargeUsd: 0,
  prompt: "",
  duration: "6",
  ...(file ? { file } : {}),
});

describe("which take the film uses", () => {
  it("a person's pick, else the newest re-roll, else the manifest's pick:, else the first finished; only takes with a clip", () => {
    const items = [
      row("a", 1, "a1"),
      row("a", 2, "a2"),
      row("a", 3),
      row("b", 1),
      row("b", 2, "b2"),
      row("b", 3, "b3"),
    ];
    const take = (m: typeof manifest, its: ItemReport[], picks: Record<string, number>) =>
      [...chosenTakes(m, its, picks)].map(([s, i]) => `${s}${i?.take ?? "-"}`);
    expect(take(manifest, items, {})).toEqual(["a2", "b2"]);
    expect(take(manifest, items, { a: 1, b: 3 })).toEqual(["a1", "b3"]);
    // A pick of a take without a clip falls through to the next rule.
    expect(take(manifest, items, { a: 3 })).toEqual(["a2", "b2"]);
    const { manifest: rolled, added } = withRerolls(
      manifest,
      "b",
      2,
      "scene b, at dusk",
      new Date("2026-11-24T12:00:00Z"),
    );
    expect(added).toEqual([
      { take: 4, prompt: "scene b, at dusk", at: "2026-11-24T12:00:00.000Z" },
      { take: 5, prompt: "scene b, at dusk", at: "2026-11-24T12:00:00.000Z" },
    ]);
    expect(take(rolled, [...items, row("b", 4, "b4"), row("b", 5)], {})).toEqual(["a2", "b4"]);
    expect(take(rolled, [...items, row("b", 4, "b4"), row("b", 5, "b5")], { b: 3 })).toEqual([
      "a2",
      "b3",
    ]);
    expect(take(rolled, [...items, row("b", 4, "b4"), row("b", 5, "b5")], {})).toEqual([
      "a2",
      "b5",
    ]);
    expect(take(manifest, [row("a", 1), row("b", 1)], {})).toEqual(["a-", "b-"]);
  });

  it("re-rolled takes are planned with their own prompt and survive running the manifest file again", () => {
    const { manifest: rolled } = withRerolls(manifest, "a", 1, "scene a, edited");
    const plan = planRun(rolled).filter((p) => p.sceneId === "a");
    expect(plan.map((p) => [p.take, p.input.prompt])).toEqual([
      [1, "scene a"],
      [2, "scene a"],
      [3, "scene a"],
      [4, "scene a, edited"],
    ]);
    expect(new Set(plan.map((p) => p.key)).size).toBe(4);
    expect(carryRerolls(manifest, rolled).scenes[0]!.rerolls).toEqual(rolled.scenes[0]!.rerolls);
    expect(() => withRerolls(manifest, "zz", 1)).toThrow(
      /no scene zz in this run \(scenes: a, b\)/,
    );
  });
});
