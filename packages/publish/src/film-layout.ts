import { dirname, resolve } from "node:path";
import type { Manifest } from "@hailuo/manifest";
import type { AudioBed, Card, PendingClip, Transition } from "@hailuo/media";
import { chosenTakes, insideDir, journalPath, readJournal, type ItemReport } from "@hailuo/runner";
import type { MediaStageOptions } from "./media-stage.js";

/** A film's slots in manifest order: what stands in each, and the transition after it. */
export interface FilmLayout {
  /** Clip paths (absolute), placeholder cards, and (while clips arrive) clips not there yet. */
  parts: (string | Card | PendingClip)[];
  /** The transition after each part (the scene's own, else the film's). */
  transitions: (Transition | undefined)[];
  /** Which scene and take each part is. */
  used: { scene: string; take?: number; file?: string }[];
  /** Scenes left out (no clip), or standing as placeholder cards. */
  skipped: string[];
  warnings: string[];
}

/**
 * Lays the film out (pure over the report and picks): each scene's chosen take (picks.json, a
 * re-roll, `pick:`, else the first finished); a scene without a clip is skipped, or becomes a
 * placeholder card, or, `arriving` (a run still going), a pending clip of the scene's length.
 */
export function filmLayout(
  runDir: string,
  manifest: Manifest,
  items: ItemReport[],
  picks: Record<string, number>,
  options: Pick<MediaStageOptions, "placeholders" | "transition">,
  arriving = false,
): FilmLayout {
  const spec = manifest.assemble;
  const placeholders = options.placeholders ?? spec?.placeholders ?? false;
  const byScene = new Map<string, ItemReport[]>();
  for (const i of items) byScene.set(i.scene, [...(byScene.get(i.scene) ?? []), i]);
  const chosenBy = chosenTakes(manifest, items, picks);
  const layout: FilmLayout = { parts: [], transitions: [], used: [], skipped: [], warnings: [] };
  const defaultTransition = options.transition ?? spec?.transition;
  for (const scene of manifest.scenes) {
    const chosen = chosenBy.get(scene.id);
    if (chosen) {
      layout.parts.push(insideDir(runDir, chosen.file!));
      layout.used.push({ scene: scene.id, take: chosen.take, file: chosen.file });
    } else if (arriving) {
      layout.parts.push({ pending: true, durationS: Number(scene.duration) });
      layout.used.push({ scene: scene.id });
    } else {
      const takes = byScene.get(scene.id) ?? [];
      layout.skipped.push(scene.id);
      if (!placeholders) {
        layout.warnings.push(
          `${scene.id}: no clip (${takes[0]?.status ?? "missing"}); left out of the film`,
        );
        continue;
      }
      layout.warnings.push(`${scene.id}: no clip; a placeholder card stands in`);
      layout.parts.push({
        text: `${scene.id}\n(not generated)`,
        durationS: Number(scene.duration),
        color: "#2a1214",
      });
      layout.used.push({ scene: scene.id });
    }
    layout.transitions.push(scene.transition ?? defaultTransition);
  }
  return layout;
}

/** The film's music bed: the option's file, else the manifest's `assemble.audio` (relative to it). */
export function audioBedOf(
  manifest: Manifest,
  options: Pick<MediaStageOptions, "audioFile">,
): AudioBed | undefined {
  const spec = manifest.assemble;
  const file =
    options.audioFile ??
    (spec?.audio ? resolve(dirname(manifest.file), spec.audio.file) : undefined);
  return file
    ? {
        file,
        volume: spec?.audio?.volume,
        fadeInS: spec?.audio?.fadeInS,
        fadeOutS: spec?.audio?.fadeOutS,
      }
    : undefined;
}

/**
 * Each clip's sha256 as the journal recorded it at download, by absolute path: what a film's
 * pieces are keyed by. The film checks the clips against these hashes before it uses them
 * (`checkClips`), so a piece's key names the bytes it was made from.
 */
export async function clipIds(runDir: string): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const r of (await readJournal(journalPath(runDir))).records) {
    const facts = r as { file?: unknown; sha256?: unknown };
    if (typeof facts.file === "string" && typeof facts.sha256 === "string")
      ids.set(insideDir(runDir, facts.file), facts.sha256);
  }
  return ids;
}
