import { createHash } from "node:crypto";
import { access, mkdir, readFile, stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import pLimit from "p-limit";
import { basename, isAbsolute, join, relative, resolve } from "node:path";
import type { Manifest } from "@hailuo/manifest";
import {
  DEFAULT_X264_PRESET,
  animatedPreview,
  concatClips,
  contactSheet,
  poster,
  type Card,
  type Transition,
  type VideoInfo,
} from "@hailuo/media";
import { HailuoError, atomicWrite } from "@hailuo/shared";
import {
  checkClips,
  chosenTakes,
  clipsChangedError,
  insideDir,
  readPicks,
  readRunReport,
  type RunReport,
} from "@hailuo/runner";
import { audioBedOf, clipIds, filmLayout } from "./film-layout.js";
import { renderRunPage, type PageMedia } from "./run-page.js";
import { pageFacts } from "./scene-facts.js";

/** Options of the media stage. */
export interface MediaStageOptions {
  /** Make the film even without an `assemble:` section; `false` never makes it. @default the manifest decides */
  assemble?: boolean;
  /** Overrides of the manifest's assemble settings. */
  transition?: Transition;
  audioFile?: string;
  /** Film path (relative to the run folder, or absolute). */
  filmOut?: string;
  /** Cards in place of failed scenes instead of skipping them. */
  placeholders?: boolean;
  /** libx264 preset of a re-encoded film (ultrafast for a quick draft). @default "veryfast" */
  preset?: string;
  /** Posters, contact sheet and previews. @default true */
  thumbnails?: boolean;
  /**
   * Keep a re-encoded film's pieces in `segments/` and join them by stream copy, so the next
   * film re-encodes only what changed; `false` makes the film in one go. @default true
   */
  segments?: boolean;
  /** ffmpeg runs at once making the film's pieces. @default min(2, cores) */
  segmentsTogether?: number;
  /** Make the film before the thumbnails: what a person waits for after the last clip. @default false */
  filmFirst?: boolean;
  /** How the page names the run in its commands: a bucket run's `s3://` address (see `pageFacts`). */
  runAddress?: string;
  signal?: AbortSignal;
  /** ffmpeg progress per step, 0–100. */
  onProgress?: (step: string, percent: number) => void;
  onWarning?: (message: string) => void;
}

/** What the stage made. */
export interface MediaStageResult extends PageMedia {
  page: string;
  skipped: string[];
}

async function newer(target: string, source: string): Promise<boolean> {
  const [t, s] = await Promise.all([
    stat(target).catch(() => undefined),
    stat(source).catch(() => undefined),
  ]);
  return Boolean(t && s && t.mtimeMs >= s.mtimeMs && t.size > 0);
}

/**
 * Posters (one per clip file, fast seek), animated previews and the run's contact sheet, made in
 * parallel up to the cores; only what is missing or older than its clip is made, and the sheet
 * only when its tiles changed. Clip durations come from the journal, not from ffprobe.
 */
export async function makeThumbnails(
  runDir: string,
  manifest: Manifest,
  report: RunReport,
  options: MediaStageOptions = {},
  how: {
    /** Make the contact sheet too. @default true */
    sheet?: boolean;
    /** Clips worked on at once. @default the cores */
    concurrency?: number;
  } = {},
): Promise<Pick<PageMedia, "posters" | "previews" | "sheet" | "sheetPages">> {
  await mkdir(join(runDir, "thumbs"), { recursive: true });
  const posters: Record<string, string> = {};
  const previews: Record<string, string> = {};
  const done = report.items.filter((i) => i.file);
  const seconds = new Map(done.map((i) => [i.file!, i.video?.durationS ?? i.seconds]));
  const files = [...new Set(done.map((i) => i.file!))];
  const { posterAt, preview, sheetColumns } = manifest.thumbnails;
  const limit = pLimit(how.concurrency ?? availableParallelism());
  let made = 0;
  // Told from its first moment, not when the first poster is done.
  if (files.length) options.onProgress?.("thumbnails", 0);
  await Promise.all(
    files.map((file) =>
      limit(async () => {
        const clip = insideDir(runDir, file);
        const stem = basename(file, ".mp4");
        const p = `thumbs/${stem}.jpg`;
        const durationS = seconds.get(file);
        if (!(await newer(insideDir(runDir, p), clip)))
          await poster(clip, insideDir(runDir, p), {
            atS: posterAt,
            durationS,
            signal: options.signal,
          });
        posters[file] = p;
        if (preview !== "none") {
          const g = `thumbs/${stem}.${preview}`;
          if (!(await newer(insideDir(runDir, g), clip)))
            await animatedPreview(clip, insideDir(runDir, g), {
              clipDurationS: durationS,
              signal: options.signal,
            });
          previews[file] = g;
        }
        options.onProgress?.("thumbnails", (++made / files.length) * 100);
      }),
    ),
  );
  if (!(sheetColumns > 0 && done.length > 0) || how.sheet === false) return { posters, previews };
  const items = done.map((i) => ({
    file: insideDir(runDir, posters[i.file!]!),
    label: `${i.scene}${i.take > 1 ? ` #${i.take}` : ""} · ${(i.seconds ?? Number(i.duration)).toFixed(0)} s`,
  }));
  return {
    posters,
    previews,
    ...(await sheetIfChanged(runDir, items, sheetColumns, options.signal)),
  };
}

/** The contact sheet's pages, made again only when its tiles (posters, labels, layout) changed since the last one. */
async function sheetIfChanged(
  runDir: string,
  items: { file: string; label: string }[],
  columns: number,
  signal?: AbortSignal,
): Promise<{ sheet: string; sheetPages: string[] }> {
  const stamps = await Promise.all(
    items.map(
      async (t) =>
        `${t.file}|${t.label}|${(await stat(t.file).catch(() => undefined))?.mtimeMs ?? 0}`,
    ),
  );
  const signature = createHash("sha256")
    .update(JSON.stringify([columns, stamps]))
    .digest("hex");
  const record = join(runDir, "thumbs", "sheet.json");
  const last = await readFile(record, "utf8").then(
    (t) => JSON.parse(t) as { signature: string; pages: string[] },
    () => undefined,
  );
  if (
    last?.signature === signature &&
    (
      await Promise.all(
        last.pages.map((p) =>
          access(insideDir(runDir, p)).then(
            () => true,
            () => false,
          ),
        ),
      )
    ).every(Boolean)
  ) {
    return { sheet: last.pages[0]!, sheetPages: last.pages };
  }
  const made = await contactSheet(items, insideDir(runDir, "contact-sheet.jpg"), {
    columns,
    signal,
  });
  const pages = made.pages.map((p) => relative(runDir, p));
  await atomicWrite(record, JSON.stringify({ signature, pages }));
  return { sheet: pages[0]!, sheetPages: pages };
}

/**
 * Assembles the film in manifest order, each scene's chosen take (picks.json, a re-roll, `pick:`,
 * else the first finished). A scene that failed is skipped with a warning, or becomes a
 * placeholder card: never a broken film. A re-encoded film is made of pieces kept in
 * `segments/` (`segments: false` makes it in one go): a clip's body, each transition, each card,
 * keyed by what they hold, so after a new pick only that scene's pieces are encoded again and
 * the film is a stream-copy join. Writes `film.json` (which take each scene used, where it
 * starts) and a WebVTT chapters track beside the film.
 */
export async function assembleFilm(
  runDir: string,
  manifest: Manifest,
  report: RunReport,
  options: MediaStageOptions = {},
): Promise<{ film: NonNullable<PageMedia["film"]>; skipped: string[] }> {
  // Told from its first moment: checking the clips (hashing them) is part of the step.
  options.onProgress?.("film", 0);
  const spec = manifest.assemble;
  const layout = filmLayout(runDir, manifest, report.items, await readPicks(runDir), options);
  for (const w of layout.warnings) options.onWarning?.(w);
  const { used, skipped, transitions } = layout;
  const parts = layout.parts as (string | Card)[];
  if (!parts.some((p) => typeof p === "string"))
    throw new HailuoError("assemble_failed", "no scene has a clip yet; nothing to assemble");
  // A clip is verified, not trusted: one replaced, cut or rotted since its download (same size
  // and time included) never goes into the film. Clips this process hashed are not read again.
  const files = used.flatMap((u) => (u.file ? [u.file] : []));
  const changed = (await checkClips(runDir, { files, hash: "unverified" })).filter(
    (c) => c.standing !== "intact",
  );
  if (changed.length)
    throw await clipsChangedError(
      runDir,
      changed,
      new Map(used.map((u) => [u.file ?? "", `${u.scene} take ${u.take}`])),
    );
  const audio = audioBedOf(manifest, options);
  if (audio) {
    await access(audio.file).catch(() => {
      throw new HailuoError(
        "assemble_failed",
        `audio file ${audio.file} not found${spec?.audio ? ` (assemble.audio.file in ${manifest.file})` : ""}`,
      );
    });
  }
  const out =
    options.filmOut && isAbsolute(options.filmOut)
      ? options.filmOut
      : insideDir(runDir, options.filmOut ?? spec?.output ?? "film.mp4");
  const inRun = relative(resolve(runDir), out);
  const known = await knownFacts(runDir, report, used);
  // The same clips, cuts, cards and audio as the film already on disk: it stands (a resume with nothing new is quick).
  const audioStamp = audio
    ? `${audio.file}|${(await stat(audio.file).catch(() => undefined))?.mtimeMs ?? 0}`
    : "";
  const signature = createHash("sha256")
    .update(
      JSON.stringify([
        known.stamps,
        transitions,
        spec?.title,
        spec?.end,
        audio,
        audioStamp,
        out,
        options.preset ?? DEFAULT_X264_PRESET,
      ]),
    )
    .digest("hex");
  const previous = await readFile(`${out}.json`, "utf8").then(
    (t) => JSON.parse(t) as FilmFile,
    () => undefined,
  );
  if (previous?.signature === signature && (await stat(out).catch(() => undefined))?.size) {
    options.onProgress?.("film", 100);
    return {
      film: {
        file: previous.file,
        durationS: previous.durationS,
        mode: previous.mode,
        reason: "its clips, cuts, cards and audio are unchanged: the film already made stands",
      },
      skipped,
    };
  }
  const result = await concatClips(parts, out, {
    known: known.facts,
    transitions: transitions.slice(0, -1),
    title: spec?.title,
    end: spec?.end,
    audio,
    preset: options.preset,
    signal: options.signal,
    onProgress: (p) => options.onProgress?.("film", p),
    ...(options.segments === false
      ? {}
      : {
          segments: {
            dir: join(runDir, SEGMENTS_DIR),
            ids: await clipIds(runDir),
            together: options.segmentsTogether,
          },
        }),
  });
  const film = {
    file: inRun.startsWith("..") ? out : inRun,
    durationS: result.info.durationS,
    mode: result.mode,
    reason: result.reason,
  };
  const chapters = used.map((u, i) => ({
    ...u,
    startS: result.partStartsS[i]!,
    endS: result.partStartsS[i + 1] ?? result.info.durationS - (spec?.end?.durationS ?? 0),
  }));
  // The track first: a page that sees the new film.mp4.json links its chapters at once.
  await atomicWrite(`${out}.chapters.vtt`, chaptersVtt(chapters));
  await atomicWrite(
    `${out}.json`,
    `${JSON.stringify({ version: 1, ...film, chapters, madeAt: new Date().toISOString(), signature } satisfies FilmFile, null, 2)}\n`,
  );
  options.onProgress?.("film", 100);
  return { film, skipped };
}

/** Where a run folder keeps its film's pieces. */
export const SEGMENTS_DIR = "segments";

/**
 * Probe facts measured at download (journal) by clip path, for the clips the film uses; a clip
 * whose size changed since is left out (probed again). `stamps`: each slot's file, size and time.
 */
export async function knownFacts(
  runDir: string,
  report: RunReport,
  used: { scene: string; file?: string }[],
): Promise<{ facts: Map<string, VideoInfo>; stamps: string[] }> {
  const facts = new Map<string, VideoInfo>();
  const byFile = new Map(report.items.filter((i) => i.file).map((i) => [i.file!, i]));
  const stamps: string[] = [];
  for (const u of used) {
    const item = u.file ? byFile.get(u.file) : undefined;
    const path = u.file && insideDir(runDir, u.file);
    const st = path ? await stat(path).catch(() => undefined) : undefined;
    stamps.push(`${u.file ?? u.scene}|${st?.size ?? 0}|${st?.mtimeMs ?? 0}`);
    if (item?.video && path && st?.size === item.video.bytes) facts.set(path, item.video);
  }
  return { facts, stamps };
}

/** `<film>.json`: how the film was made (which take each scene used and where it starts). */
export interface FilmFile {
  version: 1;
  file: string;
  durationS: number;
  mode: string;
  reason?: string;
  chapters: { scene: string; take?: number; file?: string; startS: number; endS: number }[];
  madeAt: string;
  /** What the film was made from (clip sizes and times, transitions, cards, audio): the same again reuses the film. */
  signature: string;
}

/** A WebVTT chapters track: one cue per scene, named "scene (take N)". */
export function chaptersVtt(chapters: FilmFile["chapters"]): string {
  const ts = (s: number) => new Date(Math.max(0, Math.round(s * 1000))).toISOString().slice(11, 23);
  return `WEBVTT\n\n${chapters.map((c, i) => `${i + 1}\n${ts(c.startS)} --> ${ts(Math.max(c.endS, c.startS + 0.001))}\n${c.scene}${c.take ? ` (take ${c.take})` : " (placeholder)"}\n`).join("\n")}`;
}

/**
 * The film already in the run folder (`film.mp4` or `assemble.output`, with its `.json`), when it
 * is up to date: it shows the take each scene would use now, and no clip is newer than it. A page
 * rewritten without assembling (`hailuo report`) keeps showing it; a stale film is left off.
 */
async function filmOnDisk(
  runDir: string,
  manifest: Manifest,
  report: RunReport,
): Promise<PageMedia["film"]> {
  const out = insideDir(runDir, manifest.assemble?.output ?? "film.mp4");
  const made = await readFile(`${out}.json`, "utf8").then(
    (t) => JSON.parse(t) as FilmFile,
    () => undefined,
  );
  if (!Array.isArray(made?.chapters) || !(await stat(out).catch(() => undefined))?.size)
    return undefined;
  const scenes = new Set(manifest.scenes.map((s) => s.id));
  if (!made.chapters.every((c) => scenes.has(c.scene))) return undefined;
  const chosenBy = chosenTakes(manifest, report.items, await readPicks(runDir));
  const inFilm = new Map(made.chapters.map((c) => [c.scene, c.file]));
  for (const scene of manifest.scenes) {
    const file = chosenBy.get(scene.id)?.file;
    if (file !== inFilm.get(scene.id)) return undefined;
    if (file && !(await newer(out, insideDir(runDir, file)))) return undefined;
  }
  return {
    file: relative(resolve(runDir), out),
    durationS: Number(made.durationS),
    mode: String(made.mode),
    reason: made.reason,
  };
}

/**
 * The whole media stage of a run: thumbnails, the film (when the manifest has `assemble:` or it
 * is asked for) and index.html. Safe to run again after a resume: it picks up the new clips.
 */
export async function runMediaStage(
  runDir: string,
  manifest: Manifest,
  options: MediaStageOptions = {},
): Promise<MediaStageResult> {
  const report = await readRunReport(runDir, manifest);
  const thumbnails = () =>
    options.thumbnails === false
      ? { posters: {}, previews: {} }
      : makeThumbnails(runDir, manifest, report, options);
  const thumbs = options.filmFirst ? undefined : await thumbnails();
  let film: PageMedia["film"];
  let skipped: string[] = [];
  const wantFilm = options.assemble ?? Boolean(manifest.assemble);
  if (wantFilm && report.items.some((i) => i.file))
    ({ film, skipped } = await assembleFilm(runDir, manifest, report, options));
  else if (!wantFilm) film = await filmOnDisk(runDir, manifest, report);
  const media: PageMedia = { ...(thumbs ?? (await thumbnails())), ...(film ? { film } : {}) };
  // Each scene's model, images and chain, and what a pick upstream made stale (with its cost).
  // They only decorate the page: one that cannot be read leaves the page without them.
  const facts = await pageFacts(runDir, manifest, report, {
    address: options.runAddress,
  }).catch((error: Error) => {
    options.onWarning?.(`page: scene details left out (${error.message})`);
    return undefined;
  });
  await atomicWrite(join(runDir, "index.html"), renderRunPage(report, media, facts));
  return { ...media, page: "index.html", skipped };
}
