import { stat } from "node:fs/promises";
import { availableParallelism, setPriority } from "node:os";
import { join } from "node:path";
import pLimit from "p-limit";
import type { Manifest } from "@hailuo/manifest";
import {
  canStreamCopy,
  fileSha256,
  filmFrame,
  makePieces,
  pieceRuns,
  piecePath,
  planFilmParts,
  probe,
  readsPending,
  transitionsAfter,
  type FilmPlan,
  type VideoInfo,
} from "@hailuo/media";
import { readPicks, readRunReport } from "@hailuo/runner";
import { audioBedOf, clipIds, filmLayout } from "./film-layout.js";
import {
  SEGMENTS_DIR,
  knownFacts,
  makeThumbnails,
  runMediaStage,
  type MediaStageOptions,
  type MediaStageResult,
} from "./media-stage.js";

const isPiece = async (file: string) => ((await stat(file).catch(() => undefined))?.size ?? 0) > 0;

/** Options of `createFilmBuilder`: the media stage's, and how politely to work while a run goes on. */
export interface FilmBuilderOptions extends MediaStageOptions {
  runDir: string;
  manifest: Manifest;
  /**
   * ffmpeg runs at once while clips arrive, sharing the cores. @default min(2, cores): one run
   * alone leaves a core idle while it decodes and filters, and clips land faster than it encodes.
   */
  concurrency?: number;
  /**
   * Niceness of those runs (0–19): the run's own work (submits, polls, downloads) never waits
   * for a film piece. @default 10
   */
  niceness?: number;
  /** Posters and previews of each clip as it arrives (the contact sheet waits for `finish`). @default true */
  thumbnailsWhileArriving?: boolean;
  /** Pieces made while clips arrive: how many of the film's pieces are made, of how many. */
  onPieces?: (made: number, planned: number) => void;
}

/** Makes a run's film as its clips arrive (`createFilmBuilder`). */
export interface FilmBuilder {
  /**
   * A scene's clip is saved: the film pieces it completes (its body, the windows to neighbours
   * already there) and its poster are made in the background, on the bounded pool. Resolves when
   * the builder is idle again; never rejects (a piece that fails is made again by `finish`).
   */
  clipReady(sceneId: string): Promise<void>;
  /**
   * The run is over: the ffmpeg under way is raised to normal priority and finished (stopped
   * where that is not allowed), queued work is dropped, then the media stage runs with the film
   * first: the pieces not made yet (the last clips') at full speed, the stream-copy join,
   * thumbnails and the page. What was made ahead is reused by key.
   */
  finish(): Promise<MediaStageResult>;
  /** Stops making pieces (an ffmpeg under way is killed; what is made stays) and waits for it. */
  close(): Promise<void>;
}

/**
 * A film made while the run goes on: each `clipReady` plans the film with the clips there now
 * (the others pending) and makes, a bounded number of ffmpegs at a low priority, the pieces whose
 * clips are all present, into `segments/`, keyed as `assembleFilm` keys them. After the last
 * clip, `finish` has only that clip's pieces and the join left. A film joined by stream copy
 * (plain cuts, nothing drawn) has no pieces to make ahead.
 */
export function createFilmBuilder(options: FilmBuilderOptions): FilmBuilder {
  const { runDir, manifest } = options;
  const dir = join(runDir, SEGMENTS_DIR);
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const concurrency = Math.max(1, options.concurrency ?? Math.min(2, availableParallelism()));
  const pool = pLimit(concurrency);
  const threads = Math.max(1, Math.floor(availableParallelism() / concurrency));
  const jobs = new Set<Promise<void>>();
  const making = new Set<string>();
  const warned = new Set<string>();
  let scan: Promise<void> | undefined;
  let again = false;
  let finishing = false;
  /** The builder's ffmpeg processes running now. */
  const live = new Set<number>();
  /** The film as the last scan planned it. */
  let latest: FilmPlan | undefined;

  const warn = (message: string) => {
    if (warned.has(message)) return;
    warned.add(message);
    options.onWarning?.(message);
  };
  const enqueue = (work: () => Promise<void>) => {
    // Work not started when the run ends is left to `finish` (full speed, two at a time).
    const job: Promise<void> = pool(() => (signal.aborted || finishing ? undefined : work()))
      .catch((error: unknown) => {
        if (!signal.aborted)
          warn(`film: ${(error as Error).message}; made again at the end of the run`);
      })
      .finally(() => jobs.delete(job));
    jobs.add(job);
  };

  /** The film as it would be made now, pending clips included; undefined when nothing is to be made ahead. */
  async function planNow(): Promise<FilmPlan | undefined> {
    const report = await readRunReport(runDir, manifest);
    if (options.thumbnails !== false && options.thumbnailsWhileArriving !== false)
      enqueue(async () => {
        await makeThumbnails(
          runDir,
          manifest,
          report,
          { signal },
          { sheet: false, concurrency: 1 },
        );
      });
    if (!(options.assemble ?? Boolean(manifest.assemble))) return undefined;
    const layout = filmLayout(
      runDir,
      manifest,
      report.items,
      await readPicks(runDir),
      options,
      true,
    );
    const clips = layout.parts.filter((p): p is string => typeof p === "string");
    if (!clips.length) return undefined;
    const known = (await knownFacts(runDir, report, layout.used)).facts;
    const infos = new Map<string, VideoInfo>();
    for (const c of clips) infos.set(c, known.get(c) ?? (await probe(c)));
    const spec = manifest.assemble;
    const transitions = transitionsAfter(layout.parts.length, layout.transitions.slice(0, -1));
    const drawn =
      transitions.some(Boolean) || spec?.title || spec?.end || audioBedOf(manifest, options);
    // Plain cuts of alike clips: the film will be a stream copy of the clips themselves.
    if (!drawn && canStreamCopy([...infos.values()])) return undefined;
    const ids = await clipIds(runDir);
    for (const c of clips) if (!ids.has(c)) ids.set(c, await fileSha256(c));
    // The film's frame is its first clip's: until that one is here, the first one that is
    // (clips of one run share it; a guess that is wrong only costs its pieces again).
    const { W, H, F } = filmFrame(infos.get(clips[0]!)!);
    return planFilmParts(layout.parts, {
      transitions,
      title: spec?.title,
      end: spec?.end,
      info: (c) => infos.get(c)!,
      id: (c) => ids.get(c)!,
      W,
      H,
      F,
      preset: options.preset,
    });
  }

  async function scanOnce(): Promise<void> {
    const plan = await planNow().catch((error: Error) => {
      warn(`film: pieces wait for the end of the run (${error.message})`);
      return undefined;
    });
    if (!plan) return;
    const present = await Promise.all(plan.pieces.map((p) => isPiece(piecePath(dir, p))));
    latest = plan;
    const todo = plan.pieces.filter(
      (p, i) => !present[i] && !making.has(p.key) && !readsPending(plan, p),
    );
    // One job per stretch of consecutive pieces: one ffmpeg reads each clip once for all of them.
    // Short stretches: a run under way when the last clip lands is waited for before the rest
    // of the film is made two at a time, and a backlog must not become one long run.
    const wanted = new Set(todo.map((p) => p.key));
    for (const run of pieceRuns(plan, wanted, { together: 1, maxParts: 2 })) {
      for (const p of run) making.add(p.key);
      enqueue(async () => {
        try {
          await makePieces(plan, run, dir, {
            together: 1,
            threads,
            niceness: options.niceness ?? 10,
            signal,
            onProcess: (pid, running) => (running ? live.add(pid) : live.delete(pid)),
          });
          if (options.onPieces && latest) {
            const now = latest;
            const there = await Promise.all(now.pieces.map((p) => isPiece(piecePath(dir, p))));
            options.onPieces(there.filter(Boolean).length, now.pieces.length);
          }
        } finally {
          for (const p of run) making.delete(p.key);
        }
      });
    }
  }

  /** Resolves once no scan and no job is left. */
  async function idle(): Promise<void> {
    while (scan || jobs.size) await Promise.allSettled([scan, ...jobs]);
  }

  return {
    clipReady(_sceneId) {
      if (finishing || signal.aborted) return idle();
      // Clips landing while a scan reads the journal are seen by one more scan, not one each.
      if (scan) again = true;
      else
        scan = (async () => {
          do {
            again = false;
            await scanOnce();
          } while (again && !signal.aborted);
        })().finally(() => (scan = undefined));
      return idle();
    },
    async finish() {
      finishing = true;
      // The run is over: nothing is left to be polite to. The ffmpeg under way is raised to
      // normal priority and finished (on a busy machine a niced one crawls); where that is not
      // allowed (an unprivileged process may not lower a niceness) it is stopped, and the media
      // stage makes its pieces at full speed with the rest.
      let raised = true;
      for (const pid of live) {
        try {
          setPriority(pid, 0);
        } catch {
          raised = false;
        }
      }
      if (!raised) stop.abort();
      await idle();
      const {
        runDir: _r,
        manifest: _m,
        concurrency: _c,
        niceness: _n,
        onPieces: _o,
        ...stage
      } = options;
      return runMediaStage(runDir, manifest, { ...stage, filmFirst: true });
    },
    async close() {
      finishing = true;
      stop.abort();
      await idle();
    },
  };
}
