import type { Scene } from "@hailuo/manifest";

/**
 * The take the film uses for each scene, among `withClip` (takes that have a clip, in plan
 * order): the person's pick, else the newest re-rolled take (a re-roll says "I want another"),
 * else the manifest's `pick:`, else the first finished take. A scene with no clip maps to
 * undefined. Pure: the one rule for the film, the report and a continuing scene's first frame.
 */
export function chooseTakes<T extends { scene: string; take: number }>(
  scenes: readonly Pick<Scene, "id" | "rerolls" | "pick">[],
  withClip: readonly T[],
  picks: Readonly<Record<string, number>>,
): Map<string, T | undefined> {
  const chosen = new Map<string, T | undefined>();
  const byScene = new Map<string, T[]>();
  for (const i of withClip) byScene.set(i.scene, [...(byScene.get(i.scene) ?? []), i]);
  for (const scene of scenes) {
    const clips = byScene.get(scene.id) ?? [];
    const take = (n: number | undefined) =>
      n === undefined ? undefined : clips.find((i) => i.take === n);
    const rerolled = [...(scene.rerolls ?? [])]
      .reverse()
      .map((r) => take(r.take))
      .find(Boolean);
    chosen.set(scene.id, take(picks[scene.id]) ?? rerolled ?? take(scene.pick) ?? clips[0]);
  }
  return chosen;
}
