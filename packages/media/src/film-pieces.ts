import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import pLimit from "p-limit";
import { AssembleError } from "./assemble-error.js";
import { PIECE_CRF, pieceRuns, readsPending, type FilmPiece, type FilmPlan } from "./film-plan.js";
import { settleAll, withWorkDir } from "./media-work.js";
import { runFfmpeg, throughTemp, type MediaOptions } from "./run-ffmpeg.js";
import { blendWindow, cardFilter, cardSource, normFilter, readyFilter } from "./segments.js";

/** A piece's file in the segments folder: its key names it. */
export function piecePath(dir: string, piece: FilmPiece): string {
  return join(dir, `${piece.key}.mp4`);
}

const PIECE_NAME = /^[0-9a-f]{32}\.mp4$/;

/**
 * The ffmpeg arguments that make one run of consecutive pieces (pure): each part the run touches
 * is decoded once (no further than the run reads it) and split into the ranges its pieces read;
 * windows are blended, everything is joined into one stream of exactly the run's frames and
 * encoded once, with an IDR frame where each piece starts, and the segment muxer cuts the stream
 * there into one MP4 per piece (`piece-00000.mp4`…, listed in `pieces.csv`). Card texts go in
 * files (`cards`) the caller writes first: drawtext reads them without any escaping.
 */
export function pieceRunArgs(
  plan: FilmPlan,
  run: FilmPiece[],
  { work, threads }: { work: string; threads: number },
): { args: string[]; cards: { file: string; text: string }[]; list: string } {
  const { parts, W, H, F, preset } = plan.input;
  const norm = normFilter(W, H, F);
  const used = [...new Set(run.flatMap((p) => p.reads.map((r) => r.part)))].sort((a, b) => a - b);
  const args: string[] = [];
  const filters: string[] = [];
  const cards: { file: string; text: string }[] = [];
  const label = (q: number, r: number) => `r${q}_${r}`;
  for (const [slot, k] of used.entries()) {
    const part = parts[k]!;
    const reads = run.flatMap((p, q) =>
      p.reads.flatMap((r, i) => (r.part === k ? [{ r, out: label(q, i) }] : [])),
    );
    const until = Math.max(...reads.map(({ r }) => r.toFrame));
    // One decoder thread: the encoder keeps the cores busy, and each frame thread of a decoder
    // holds its own reference frames. A part read only in part stops being decoded there.
    const reading = [
      "-threads",
      "1",
      ...(until < Math.round(part.durationS * F) ? ["-t", ((until + 2) / F).toFixed(6)] : []),
    ];
    let source: string;
    if (part.kind === "clip") {
      args.push(...reading, "-i", part.file);
      source = `[${slot}:v]${part.ready ? readyFilter(F) : norm}`;
    } else if (part.kind === "card") {
      const file = join(work, `card-${k}.txt`);
      cards.push({ file, text: part.text });
      args.push("-f", "lavfi", ...reading, "-i", cardSource(part.color, W, H, F, part.durationS));
      source = `[${slot}:v]${cardFilter(file, H)},${norm}`;
    } else {
      throw new AssembleError(`part ${k + 1} has no clip yet: its pieces cannot be made`);
    }
    filters.push(
      reads.length > 1
        ? `${source},split=${reads.length}${reads.map(({ out }) => `[s${out}]`).join("")}`
        : `${source}[s${reads[0]!.out}]`,
      ...reads.map(
        ({ r, out }) =>
          `[s${out}]trim=start_frame=${r.fromFrame}:end_frame=${r.toFrame},setpts=PTS-STARTPTS[${out}]`,
      ),
    );
  }
  const joined = run.map((p, q) => {
    if (p.kind === "body") return `[${label(q, 0)}]`;
    filters.push(...blendWindow(p.transition!, label(q, 0), label(q, 1), `x${q}`, p.frames, F));
    return `[x${q}]`;
  });
  const frames = run.reduce((s, p) => s + p.frames, 0);
  // Exactly the planned frames at exact 1/F steps: no output rate conversion can add one.
  filters.push(
    `${joined.join("")}concat=n=${joined.length}:v=1:a=0,trim=end_frame=${frames},settb=1/${F},setpts=N[out]`,
  );
  const cuts = run
    .slice(0, -1)
    .map((_, q) => run.slice(0, q + 1).reduce((s, p) => s + p.frames, 0));
  const list = join(work, "pieces.csv");
  args.push(
    "-filter_complex",
    filters.join(";"),
    "-map",
    "[out]",
    "-an",
    "-c:v",
    "libx264",
    "-threads",
    String(threads),
    "-preset",
    preset,
    "-crf",
    String(PIECE_CRF),
    "-pix_fmt",
    "yuv420p",
    "-r",
    String(F),
    // Each piece starts on an IDR frame, so it decodes on its own and joins to any other piece.
    ...(cuts.length
      ? ["-force_key_frames", `expr:${cuts.map((c) => `eq(n,${c})`).join("+")}`]
      : []),
    "-forced-idr",
    "1",
    // Left as x264 wrote them (B-frames: the first DTS below zero, an edit list in the MP4): else
    // the segment muxer shifts the first piece by two frames and it no longer starts at zero.
    "-avoid_negative_ts",
    "disabled",
    "-f",
    "segment",
    ...(cuts.length ? ["-segment_frames", cuts.join(",")] : []),
    "-reset_timestamps",
    "1",
    "-segment_format",
    "mp4",
    "-segment_format_options",
    `video_track_timescale=${F * 1000}`,
    "-segment_list",
    list,
    "-segment_list_type",
    "csv",
    join(work, "piece-%05d.mp4"),
  );
  return { args, cards, list };
}

/** Options of `makePieces` and `makeFilm`. */
export interface PieceOptions extends MediaOptions {
  /** ffmpeg runs at once. @default min(2, cores) */
  together?: number;
  /** Niceness of the ffmpeg runs (0–19). @default 0 */
  niceness?: number;
  /** Told each ffmpeg's pid when it starts and when it ends. */
  onProcess?: (pid: number, running: boolean) => void;
  /** Encoder threads of each run. @default the cores ÷ the runs encoded at once */
  threads?: number;
}

/**
 * Makes the pieces of `pieces` (any of the plan's) that `dir` does not hold yet, in runs of
 * consecutive pieces (`pieceRuns`), `together` at a time; each piece is renamed into place only
 * once its run succeeded and its length was checked, so a piece under its key is always whole.
 * Resolves with the number of pieces made. Progress is frames made over frames to make.
 */
export async function makePieces(
  plan: FilmPlan,
  pieces: readonly FilmPiece[],
  dir: string,
  options: PieceOptions = {},
): Promise<number> {
  const together = Math.max(1, options.together ?? Math.min(2, availableParallelism()));
  const pending = pieces.find((p) => readsPending(plan, p));
  if (pending)
    throw new AssembleError(`piece at frame ${pending.startFrame} reads a clip not there yet`);
  const present = await Promise.all(
    pieces.map(
      async (p) => ((await stat(piecePath(dir, p)).catch(() => undefined))?.size ?? 0) > 0,
    ),
  );
  const wanted = new Set(pieces.filter((_, i) => !present[i]).map((p) => p.key));
  if (!wanted.size) return 0;
  await mkdir(dir, { recursive: true });
  const runs = pieceRuns(plan, wanted, { together });
  // The encoders running at once share the cores; one alone (a pick's three pieces) gets them all.
  const threads =
    options.threads ??
    Math.max(1, Math.floor(availableParallelism() / Math.min(together, runs.length)));
  const F = plan.input.F;
  const toMake = runs.flat().reduce((s, p) => s + p.frames, 0);
  let made = 0;
  const doing = new Map<number, number>();
  const report = () =>
    options.onProgress?.(
      Math.min(100, ((made + [...doing.values()].reduce((s, x) => s + x, 0)) / toMake) * 100),
    );
  return withWorkDir(join(dir, "pieces"), "hailuo-pieces-", async (work) => {
    const limit = pLimit(together);
    // A failed run stops the others, and none is left running when this returns.
    const stop = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
    await settleAll(
      runs.map((run, i) =>
        limit(async () => {
          const runDir = join(work, `run-${i}`);
          await mkdir(runDir);
          const { args, cards, list } = pieceRunArgs(plan, run, { work: runDir, threads });
          for (const c of cards) await writeFile(c.file, c.text);
          const frames = run.reduce((s, p) => s + p.frames, 0);
          await runFfmpeg(args, `${run.length} film piece(s)`, {
            signal,
            niceness: options.niceness,
            onProcess: options.onProcess,
            expectedDurationS: frames / F,
            onProgress: (p) => {
              doing.set(i, (p / 100) * frames);
              report();
            },
          });
          // The segment muxer's list: one line per file written, with its start and end time.
          const written = (await readFile(list, "utf8"))
            .split("\n")
            .filter(Boolean)
            .map((l) => l.split(","));
          const lengths = written.map(([, a, b]) => Math.round((Number(b) - Number(a)) * F));
          const planned = run.map((p) => p.frames);
          if (lengths.join() !== planned.join())
            throw new AssembleError(
              `film pieces came out ${lengths.join(", ")} frames long; the plan says ${planned.join(", ")}`,
            );
          for (const [q, p] of run.entries())
            await rename(join(runDir, written[q]![0]!), piecePath(dir, p));
          doing.delete(i);
          made += frames;
          report();
        }),
      ),
      () => stop.abort(),
    );
    return wanted.size;
  });
}

/** A music bed under the film (see `AudioBed` of concatClips). */
export interface PieceAudio {
  file: string;
  volume?: number;
  fadeInS?: number;
  fadeOutS?: number;
}

/**
 * Joins the plan's pieces by stream copy (concat demuxer) into `out` (+faststart), through a
 * temp file, with the audio bed, if any, looped or cut to the film and faded in the same ffmpeg.
 * Resolves with the video frames written.
 */
export async function joinPieces(
  plan: FilmPlan,
  dir: string,
  out: string,
  options: MediaOptions & { audio?: PieceAudio } = {},
): Promise<number | undefined> {
  const planned = plan.durationS;
  return withWorkDir(out, "hailuo-concat-", async (work) => {
    const list = join(work, "pieces.ffconcat");
    await writeFile(
      list,
      `ffconcat version 1.0\n${plan.pieces.map((p) => `file '${piecePath(dir, p).replaceAll("'", "'\\''")}'`).join("\n")}\n`,
    );
    let frames: number | undefined;
    const a = options.audio;
    const audioArgs = a
      ? (() => {
          const fadeOut = Math.min(a.fadeOutS ?? 2, planned / 2);
          const af = `atrim=0:${planned.toFixed(3)},asetpts=PTS-STARTPTS,volume=${a.volume ?? 1},afade=t=in:d=${Math.min(a.fadeInS ?? 1, planned / 2)},afade=t=out:st=${(planned - fadeOut).toFixed(3)}:d=${fadeOut}`;
          return {
            input: ["-stream_loop", "-1", "-i", a.file],
            // No -t: the bed ends where atrim cuts it, and the video where its pieces end, so
            // the frame count below tells a piece longer than its plan.
            output: ["-map", "1:a", "-af", af, "-c:a", "aac", "-b:a", "160k", "-ar", "48000"],
          };
        })()
      : undefined;
    await throughTemp(out, async (tmp) => {
      ({ videoFrames: frames } = await runFfmpeg(
        [
          "-f",
          "concat",
          "-safe",
          "0",
          "-i",
          list,
          ...(audioArgs?.input ?? []),
          "-map",
          "0:v",
          "-c:v",
          "copy",
          ...(audioArgs?.output ?? []),
          "-movflags",
          "+faststart",
          tmp,
        ],
        out,
        { signal: options.signal, onProgress: options.onProgress, expectedDurationS: planned },
      ));
    });
    return frames;
  });
}

/**
 * Removes the pieces in `dir` that `keep` does not name and that are older than `beforeMs` (a
 * piece another process made meanwhile is left alone). Resolves with the number removed.
 */
export async function removeStalePieces(
  dir: string,
  keep: ReadonlySet<string>,
  beforeMs: number,
): Promise<number> {
  let removed = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!PIECE_NAME.test(name) || keep.has(name.slice(0, -4))) continue;
    const s = await stat(join(dir, name)).catch(() => undefined);
    if (
      s &&
      s.mtimeMs < beforeMs &&
      (await unlink(join(dir, name)).then(
        () => true,
        () => false,
      ))
    )
      removed++;
  }
  return removed;
}

/** What `makeFilm` did. */
export interface MadeFilm {
  /** Pieces encoded for this film. */
  made: number;
  /** Pieces found ready in the segments folder. */
  reused: number;
  /** Stale pieces removed after the join. */
  removed: number;
}

/**
 * A film from cached pieces: the plan's pieces missing from `dir` are made (`makePieces`), then
 * all are joined by stream copy (`joinPieces`); when the join holds other than the planned frames
 * and some pieces were reused, those are made again once. After a good join the pieces no plan
 * of this film uses any more are removed.
 */
export async function makeFilm(
  plan: FilmPlan,
  out: string,
  options: PieceOptions & { dir: string; audio?: PieceAudio },
): Promise<MadeFilm> {
  const startedMs = Date.now();
  const { dir, onProgress } = options;
  const keys = new Set(plan.pieces.map((p) => p.key));
  const step = (from: number, span: number) => (p: number) => onProgress?.(from + (p * span) / 100);
  let made = await makePieces(plan, plan.pieces, dir, { ...options, onProgress: step(0, 90) });
  let frames = await joinPieces(plan, dir, out, { ...options, onProgress: step(90, 10) });
  if (frames !== undefined && frames !== plan.totalFrames && made < keys.size) {
    // A reused piece is not what its key says (edited, cut short): every piece is made again.
    await Promise.all(plan.pieces.map((p) => unlink(piecePath(dir, p)).catch(() => {})));
    made = await makePieces(plan, plan.pieces, dir, { ...options, onProgress: step(0, 90) });
    frames = await joinPieces(plan, dir, out, { ...options, onProgress: step(90, 10) });
  }
  if (frames !== undefined && frames !== plan.totalFrames) {
    await unlink(out).catch(() => {});
    throw new AssembleError(
      `the film holds ${frames} frames; its pieces add up to ${plan.totalFrames}`,
    );
  }
  const removed = await removeStalePieces(dir, keys, startedMs);
  onProgress?.(100);
  return { made, reused: keys.size - made, removed };
}

/** A file's sha256, streamed: what a clip is known by when nothing recorded its hash. */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
