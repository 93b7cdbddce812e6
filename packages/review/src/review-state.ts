import { statSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename, isAbsolute, join } from "node:path";
import { pageFacts, type FilmFile, type SceneFacts, type StaleTake } from "@hailuo/publish";
import {
  buildReport,
  journalPath,
  readJournal,
  readPicks,
  readRunFile,
  runLockHeld,
  type ItemReport,
  type StoredRecord,
} from "@hailuo/runner";
import { HailuoError } from "@hailuo/shared";
import { filmChanges, type FilmChange } from "./film-status.js";

/** One take as the page shows it. */
export interface TakeView {
  take: number;
  /** done, failed, running (a live request while a process holds the folder), stopped (live, nobody waiting), waiting. */
  status: "done" | "failed" | "running" | "stopped" | "waiting";
  prompt: string;
  costUsd: number;
  /** Picked: the take an assemble would use now (picks.json, a re-roll, `pick:`, or the first with a clip). */
  chosen: boolean;
  /** The film on disk shows this take (it may differ from the pick until the next assemble). */
  inFilm: boolean;
  /** The clip's probed length. */
  seconds?: number;
  /** The fal endpoint that made it, from the journal's submit (absent for a clip shared with another scene). */
  endpoint?: string;
  clip?: string;
  poster?: string;
  preview?: string;
  error?: string;
  /**
   * Why this take's clip no longer fits its scene: it was made from the last frame of another
   * take upstream than the one picked now (the report's `stale`). A run makes it anew.
   */
  stale?: string;
  /** What making it anew costs (absent when no run would remake it). */
  remakeUsd?: number;
}

/** Everything the review page shows, rebuilt from the run folder on every change. */
export interface ReviewState {
  name: string;
  busy: boolean;
  totals: {
    clips: number;
    done: number;
    running: number;
    failed: number;
    waiting: number;
    billedUsd: number;
  };
  /** `emulated`: the run went to an emulator, which counted fal's price and billed nothing. */
  amounts: "billed" | "emulated";
  elapsedS?: number;
  etaS?: number;
  usdPerSecond: number;
  scenes: SceneView[];
  /**
   * Modification times of the posters and previews named in `scenes`: a file drawn again (or
   * read half-written) gets a new address, so the page fetches it again.
   */
  stamps: Record<string, number>;
  /** The film on disk and what an assemble would change in it. */
  film?: FilmFile & { version: 1; changes: FilmChange[] };
  /** Takes another pick upstream made stale, each with what making it anew costs. */
  stale: StaleTake[];
  /** What making every stale take anew costs. */
  staleUsd: number;
  /** The command that makes them anew (nothing is remade without one). */
  resume: string;
  /** Actions started from the page that are still going, and what the last ones said. */
  jobs: { id: number; what: string; state: "running" | "ok" | "failed"; message?: string }[];
}

/** One scene as the page shows it: its model, images and chain (`SceneFacts`), and its takes. */
export interface SceneView extends SceneFacts {
  prompt: string;
  /** The length asked for, as fal's enum ("6"). */
  duration: string;
  /** The picked take's probed length, else the length asked for. */
  seconds: number;
  /** How the film enters this scene: from the start, after the title card, or from the scene before. */
  transitionIn: { from: "start" | "title" | "scene"; type: string; durationS: number };
  takes: TakeView[];
}

/** Files the state depends on: when none of them changed, the state did not either. */
export async function folderSignature(runDir: string): Promise<string> {
  const parts = await Promise.all(
    // thumbs/ (the folder) changes when a poster or preview is added to it.
    ["journal.jsonl", "picks.json", "run.json", "film.mp4.json", "index.html", "thumbs"].map((f) =>
      stat(join(runDir, f)).then(
        (s) => `${s.size}:${s.mtimeMs}`,
        () => "-",
      ),
    ),
  );
  return parts.join("|");
}

/** The page's state of a run folder (no network). */
export async function reviewState(
  runDir: string,
  usdPerSecond: number,
  jobs: ReviewState["jobs"],
  /** How commands name the run: a bucket run's address when `runDir` is its scratch. */
  address?: string,
): Promise<ReviewState> {
  const run = await readRunFile(runDir);
  if (!run) throw new HailuoError("not_a_run", `${runDir} is not a run folder (no run.json)`);
  const { manifest, backend } = run;
  // One read of the journal serves the report, the owner check and the pace.
  const { records } = await readJournal(journalPath(runDir));
  const report = buildReport(manifest, runDir, records, {
    picks: await readPicks(runDir),
    backend,
  });
  // Models, images (copied into images/: only the folder's files are served), the chain, and
  // what a pick made stale, priced at the page's price.
  const facts = await pageFacts(runDir, manifest, report, { records, usdPerSecond, address });
  const factsOf = new Map(facts.scenes.map((f) => [f.id, f]));
  const remakeOf = new Map(facts.stale.map((t) => [`${t.scene}#${t.take}`, t.usd]));
  // A local run holds run.lock; a distributed one owns the folder from "enqueued" to "finished".
  const locked =
    (await runLockHeld(runDir)) ||
    records.findLast((r) => r.t === "enqueued" || r.t === "finished")?.t === "enqueued";
  const stamps: Record<string, number> = {};
  const thumb = (file: string, ext: string) => {
    const rel = `thumbs/${basename(file, ".mp4")}.${ext}`;
    const info = statSync(join(runDir, rel), { throwIfNoEntry: false });
    if (!info) return undefined;
    stamps[rel] = Math.round(info.mtimeMs);
    return rel;
  };
  const status = (s: string): TakeView["status"] =>
    s === "done" || s === "cached"
      ? "done"
      : s === "failed"
        ? "failed"
        : s === "interrupted"
          ? locked
            ? "running"
            : "stopped"
          : "waiting";
  const film = await filmOnDisk(runDir, manifest.assemble?.output ?? "film.mp4");
  const inFilm = new Map(film?.made.chapters.map((c) => [c.scene, c]));
  // The request that made each clip names its endpoint (fal's id of the model).
  const endpointOf = new Map<string, string>();
  for (const r of records)
    if (r.t === "submitted" || r.t === "reconciled")
      endpointOf.set(r.handle.requestId, r.handle.endpoint);
  const spec = manifest.assemble;
  const scenes: SceneView[] = manifest.scenes.map((scene, n) => {
    const before = manifest.scenes[n - 1];
    const into = before?.transition ?? spec?.transition;
    const takes = report.items
      .filter((i) => i.scene === scene.id)
      .map((i): TakeView => ({
        take: i.take,
        status: status(i.status),
        prompt: i.prompt,
        costUsd: i.costUsd,
        chosen: Boolean(i.chosen),
        inFilm: Boolean(i.file) && inFilm.get(scene.id)?.file === i.file,
        ...(seconds(i) !== undefined ? { seconds: seconds(i) } : {}),
        ...(i.requestId && endpointOf.has(i.requestId)
          ? { endpoint: endpointOf.get(i.requestId) }
          : {}),
        ...(i.file
          ? {
              clip: i.file,
              poster: thumb(i.file, "jpg"),
              preview: thumb(i.file, manifest.thumbnails.preview === "webp" ? "webp" : "gif"),
            }
          : {}),
        ...(i.error ? { error: `${i.errorCode ?? "error"}: ${i.error}` } : {}),
        ...(i.stale ? { stale: i.stale } : {}),
        ...(remakeOf.has(`${i.scene}#${i.take}`)
          ? { remakeUsd: remakeOf.get(`${i.scene}#${i.take}`) }
          : {}),
      }));
    const f = factsOf.get(scene.id);
    return {
      id: scene.id,
      prompt: scene.prompt,
      duration: scene.duration,
      seconds: takes.find((t) => t.chosen)?.seconds ?? Number(scene.duration),
      transitionIn: before
        ? { from: "scene", type: into?.type ?? "cut", durationS: into?.durationS ?? 0 }
        : { from: spec?.title ? "title" : "start", type: "cut", durationS: 0 },
      endpoint: f?.endpoint ?? "",
      model: f?.model ?? "",
      ...(f?.image ? { image: f.image } : {}),
      ...(f?.endImage ? { endImage: f.endImage } : {}),
      ...(f?.continueFrom ? { continueFrom: f.continueFrom } : {}),
      continuedBy: f?.continuedBy ?? [],
      takes,
    };
  });
  const all = scenes.flatMap((s) => s.takes);
  const count = (st: TakeView["status"]) => all.filter((t) => t.status === st).length;
  const totals = {
    clips: all.length,
    done: count("done"),
    running: count("running"),
    failed: count("failed"),
    waiting: count("waiting") + count("stopped"),
    billedUsd: report.totals.billedUsd,
  };
  const { elapsedS, etaS } = pace(records, locked, totals);
  // What the film shows against what an assemble would use now, from the takes `<film>.json` records.
  const changes = film
    ? filmChanges(
        await Promise.all(
          scenes.map(async (scene) => {
            const now = scene.takes.find((t) => t.chosen && t.clip);
            const mtimeMs = now?.clip
              ? (await stat(join(runDir, now.clip)).catch(() => undefined))?.mtimeMs
              : undefined;
            return {
              scene: scene.id,
              used: inFilm.get(scene.id),
              ...(now?.clip ? { now: { take: now.take, file: now.clip, mtimeMs } } : {}),
            };
          }),
        ),
        film.mtimeMs,
      )
    : [];
  return {
    name: manifest.name,
    busy: locked,
    totals,
    amounts: report.amounts ?? "billed",
    elapsedS,
    etaS,
    usdPerSecond,
    scenes,
    stamps,
    ...(film ? { film: { ...film.made, changes } } : {}),
    stale: facts.stale,
    staleUsd: facts.staleUsd,
    resume: facts.resume,
    jobs,
  };
}

/** Elapsed since the running process started, and the time left at its pace so far. */
function pace(
  records: StoredRecord[],
  locked: boolean,
  t: ReviewState["totals"],
): { elapsedS?: number; etaS?: number } {
  if (!locked) return {};
  const start = records.findLastIndex((r) => r.t === "run" || r.t === "enqueued");
  if (start < 0) return {};
  const since = records.slice(start);
  const elapsedS = (Date.now() - Date.parse(since[0]!.at)) / 1000;
  const finished = since.filter((r) => r.t === "done" || r.t === "failed").length;
  const left = t.running + t.waiting;
  return { elapsedS, ...(finished ? { etaS: (elapsedS / finished) * left } : {}) };
}

/** A take's probed length: the journal's probe, else the report's seconds. */
function seconds(i: ItemReport): number | undefined {
  return i.video?.durationS ?? i.seconds;
}

/**
 * The film of the run folder with its record (`<film>.json`: which take and clip each scene
 * shows), or undefined when either is missing, empty or unreadable.
 */
async function filmOnDisk(
  runDir: string,
  output: string,
): Promise<{ made: FilmFile; mtimeMs: number } | undefined> {
  const made = await readFile(join(runDir, `${output}.json`), "utf8").then(
    (t) => JSON.parse(t) as FilmFile,
    () => undefined,
  );
  if (!made || !Array.isArray(made.chapters)) return undefined;
  const info = await stat(isAbsolute(made.file) ? made.file : join(runDir, made.file)).catch(
    () => undefined,
  );
  return info?.size ? { made, mtimeMs: info.mtimeMs } : undefined;
}
