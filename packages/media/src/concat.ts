import { writeFile, unlink, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { AssembleError } from "./assemble-error.js";
import { audioBedProblem } from "./audio-bed.js";
import { mediaIoError, withWorkDir } from "./media-work.js";
import { probe, type VideoInfo } from "./probe.js";
import { command, copyConcat, runToFile, type MediaOptions } from "./run-ffmpeg.js";
import { planFilm, type FilmPart, type FilmPlan } from "./film-plan.js";
import { fileSha256, makeFilm, type MadeFilm } from "./film-pieces.js";
import { renderInSegments, segmentFrames, type Segmentable } from "./segments.js";

/** A transition into the next clip; `cut` (or duration 0) joins without overlap. */
export interface Transition {
  type: string;
  durationS: number;
}

/** A title or end card. */
export interface Card {
  text: string;
  durationS: number;
  /** `#rrggbb` or an ffmpeg colour name. @default "#101820" */
  color?: string;
}

/** A music bed, trimmed or looped to the film and faded. */
export interface AudioBed {
  file: string;
  /** @default 1 */
  volume?: number;
  /** @default 1 */
  fadeInS?: number;
  /** @default 2 */
  fadeOutS?: number;
}

/** libx264's presets, fastest first. */
export const X264_PRESETS = [
  "ultrafast",
  "superfast",
  "veryfast",
  "faster",
  "fast",
  "medium",
  "slow",
  "slower",
  "veryslow",
] as const;
/** The preset a re-encoded film uses unless told otherwise. */
export const DEFAULT_X264_PRESET = "veryfast";

/** Options of `concatClips`. */
export interface ConcatOptions extends MediaOptions {
  /** Transition after clip i (index i), or one for every boundary. @default cut */
  transitions?: (Transition | undefined)[] | Transition;
  title?: Card;
  end?: Card;
  audio?: AudioBed;
  /** `auto` copies streams when the clips allow it and nothing needs a filter. @default "auto" */
  mode?: "auto" | "copy" | "reencode";
  /** Output frame size; @default the first clip's */
  width?: number;
  height?: number;
  /** @default the first clip's, rounded */
  fps?: number;
  /** libx264 preset for re-encodes. @default "veryfast" */
  preset?: string;
  /** Probe facts already known (measured at download, kept in the journal), by clip path: those clips are not probed again. */
  known?: ReadonlyMap<string, VideoInfo>;
  /**
   * Keep a re-encoded film's pieces in a folder, keyed by what they hold: the next film made of
   * the same clips, cuts and cards re-encodes only the pieces that changed and joins the rest by
   * stream copy. @default none: the film is made in one go, in a scratch folder
   */
  segments?: SegmentCache;
}

/** Where a film's pieces are kept (`ConcatOptions.segments`). */
export interface SegmentCache {
  dir: string;
  /** What each clip is known by (its sha256, say), by path; a clip not in it is hashed. */
  ids?: ReadonlyMap<string, string>;
  /** ffmpeg runs at once. @default min(2, cores) */
  together?: number;
  /** Niceness of the ffmpeg runs. @default 0 */
  niceness?: number;
}

/** A clip not there yet, in a film planned while clips arrive: the pieces that read it wait. */
export interface PendingClip {
  pending: true;
  durationS: number;
}

/** What `concatClips` produced, as probed. */
export interface ConcatResult {
  file: string;
  mode: "copy" | "reencode";
  /** Why that mode, in words (shown next to the film). */
  reason: string;
  /** Seconds the film should last by the plan (clips + cards − overlaps). */
  plannedDurationS: number;
  /** Where each part starts in the film (its transition's first frame), for chapters. */
  partStartsS: number[];
  info: VideoInfo;
  /** With `segments`: pieces encoded, reused and removed as stale. */
  pieces?: MadeFilm;
}

export { AssembleError };

/** True when stream copy is safe: same codec, profile, size, pixel format, rate, time base and streams. */
export function canStreamCopy(infos: VideoInfo[]): boolean {
  const sig = (i: VideoInfo) =>
    [
      i.codec,
      i.profile,
      i.width,
      i.height,
      i.pixFmt,
      i.fpsRational,
      i.timeBase,
      i.hasAudio,
      i.audioCodec,
      i.audioSampleRate,
      i.audioChannels,
    ].join("|");
  return infos.length > 0 && infos.every((i) => sig(i) === sig(infos[0]!));
}

/** Where each xfade starts: offset_k = Σ D_i (i<k) − Σ T_j (j≤k). Cuts have T = 0. */
export function xfadeOffsets(durationsS: number[], transitionS: number[]): number[] {
  const offsets: number[] = [];
  let acc = durationsS[0] ?? 0;
  for (let k = 1; k < durationsS.length; k++) {
    const t = transitionS[k - 1] ?? 0;
    offsets.push(acc - t);
    acc += durationsS[k]! - t;
  }
  return offsets;
}

/** The transition after each of `count` parts, from `ConcatOptions.transitions` (cut or 0 s: undefined). */
export function transitionsAfter(
  count: number,
  transitions: ConcatOptions["transitions"],
): (Transition | undefined)[] {
  return Array.from({ length: Math.max(0, count - 1) }, (_, i) => {
    const t = Array.isArray(transitions) ? transitions[i] : transitions;
    return t && t.type !== "cut" && t.durationS > 0 ? t : undefined;
  });
}

/** The film's frame: the options' size and rate, else the first clip's (its rate rounded). */
export function filmFrame(
  first: VideoInfo,
  options: Pick<ConcatOptions, "width" | "height" | "fps"> = {},
): { W: number; H: number; F: number } {
  return {
    W: options.width ?? first.width,
    H: options.height ?? first.height,
    F: options.fps ?? (Math.round(first.fps) || 24),
  };
}

/** Whether a clip is already in the film's frame: same size, this exact constant rate, 4:2:0 (what the encode writes). */
export function inFilmFormat(i: VideoInfo, W: number, H: number, F: number): boolean {
  return (
    i.width === W &&
    i.height === H &&
    i.pixFmt === "yuv420p" &&
    i.fpsRational === `${F}/1` &&
    i.fps === F
  );
}

/** The card `concatClips` draws for a title, an end or a placeholder. */
function cardPart(k: Card): Segmentable {
  return { kind: "card", text: k.text, color: k.color ?? "#101820", durationS: k.durationS };
}

/**
 * The parts of a re-encoded film in order, title and end cards around the given ones, with the
 * transition after each: into the title's next part and into the end card, the film's first
 * transition (else a 0.5 s fade). Pure.
 */
export function filmSequence<P>(
  parts: P[],
  transitions: (Transition | undefined)[],
  options: Pick<ConcatOptions, "title" | "end">,
): { parts: (P | Card)[]; transitions: (Transition | undefined)[]; first: number } {
  const around = transitions.find(Boolean) ?? { type: "fade", durationS: 0.5 };
  return {
    parts: [
      ...(options.title ? [options.title] : []),
      ...parts,
      ...(options.end ? [options.end] : []),
    ],
    transitions: [
      ...(options.title ? [around] : []),
      ...transitions,
      ...(options.end ? [around] : []),
    ],
    first: options.title ? 1 : 0,
  };
}

/**
 * The plan of a re-encoded film in pieces (pure): what `concatClips` makes with `segments`, and
 * what a film made while clips arrive plans with the clips it has (others `PendingClip`). `parts`
 * are clip paths, cards and pending clips; `transitions` the one after each.
 */
export function planFilmParts(
  parts: (string | Card | PendingClip)[],
  c: {
    transitions: (Transition | undefined)[];
    title?: Card;
    end?: Card;
    info: (clip: string) => VideoInfo;
    id: (clip: string) => string;
    W: number;
    H: number;
    F: number;
    preset?: string;
  },
): FilmPlan {
  const seq = filmSequence(parts, c.transitions, c);
  return planFilm({
    parts: seq.parts.map((p): FilmPart => {
      if (typeof p === "string")
        return {
          kind: "clip",
          file: p,
          id: c.id(p),
          durationS: c.info(p).durationS,
          ready: inFilmFormat(c.info(p), c.W, c.H, c.F),
        };
      if ("pending" in p) return { kind: "pending", durationS: p.durationS };
      return cardPart(p) as FilmPart;
    }),
    transitions: seq.transitions,
    W: c.W,
    H: c.H,
    F: c.F,
    preset: c.preset ?? DEFAULT_X264_PRESET,
  });
}

function escapeConcatPath(p: string): string {
  return `file '${p.replaceAll("'", "'\\''")}'`;
}

/**
 * Joins clips (and placeholder cards) in order into one H.264 yuv420p +faststart film. Stream copy with the concat
 * demuxer when probing shows identical parameters and no filter is needed; otherwise one
 * re-encode that normalises size, rate, time base and pixel format, with xfade transitions
 * (offsets from probed durations), title/end cards and an optional audio bed. The result is
 * probed and checked against the plan.
 */
export async function concatClips(
  parts: (string | Card)[],
  out: string,
  options: ConcatOptions = {},
): Promise<ConcatResult> {
  return joinParts(parts, out, options).catch((error: unknown) => {
    throw mediaIoError(error, "assemble_failed", `film ${basename(out)}`);
  });
}

async function joinParts(
  parts: (string | Card)[],
  out: string,
  options: ConcatOptions,
): Promise<ConcatResult> {
  if (parts.length === 0) throw new AssembleError("no clips to assemble");
  const clips = parts.filter((p): p is string => typeof p === "string");
  if (clips.length === 0) throw new AssembleError("no clips to assemble, only cards");
  const probed = new Map(
    await Promise.all(
      clips.map(async (c) => [c, options.known?.get(c) ?? (await probe(c))] as const),
    ),
  );
  const infos = clips.map((c) => probed.get(c)!);
  const partDur = (p: string | Card) =>
    typeof p === "string" ? probed.get(p)!.durationS : p.durationS;
  const transitions = transitionsAfter(parts.length, options.transitions);
  const needsFilter =
    clips.length !== parts.length ||
    transitions.some(Boolean) ||
    options.title ||
    options.end ||
    options.audio ||
    options.width ||
    options.height ||
    options.fps;
  const copyable = canStreamCopy(infos);
  if (options.mode === "copy" && (!copyable || needsFilter)) {
    throw new AssembleError(
      copyable
        ? "stream copy cannot apply transitions, cards or audio"
        : "clips differ in codec parameters; stream copy would produce a broken film",
    );
  }
  const mode: ConcatResult["mode"] =
    options.mode === "reencode" || needsFilter || !copyable ? "reencode" : "copy";
  const reason =
    mode === "copy"
      ? "every clip has the same codec parameters and nothing is drawn or mixed: joined without re-encoding"
      : needsFilter
        ? "transitions, cards, audio or a new size need new frames: re-encoded piece by piece"
        : !copyable
          ? "the clips differ in codec parameters: re-encoded piece by piece to one format"
          : "re-encode asked for";
  const { W, H, F } = filmFrame(infos[0]!, options);
  const frame = 1 / F;

  for (let i = 0; i < transitions.length; i++) {
    const t = transitions[i];
    if (t && (t.durationS >= partDur(parts[i]!) || t.durationS >= partDur(parts[i + 1]!))) {
      throw new AssembleError(
        `transition ${t.type}:${t.durationS} after part ${i + 1} is longer than a part it joins`,
      );
    }
  }

  // Checked before any encoding: ffmpeg would wait forever on a FIFO and fail only at the end on the rest.
  const audioProblem = options.audio && (await audioBedProblem(options.audio.file, options));
  if (audioProblem) throw new AssembleError(audioProblem);

  if (mode === "reencode" && options.segments) {
    const made = await fromPieces(parts, probed, transitions, options, options.segments, out);
    const p = made.pieces!;
    return {
      ...made,
      reason: p.reused
        ? `${reason}; ${p.made} of ${p.made + p.reused} pieces encoded, ${p.reused} kept from before`
        : `${reason}; its ${p.made} pieces kept for the next film`,
    };
  }
  return withWorkDir(out, "hailuo-concat-", async (work) => {
    if (mode === "copy") {
      const list = join(work, "list.txt");
      await writeFile(list, clips.map((c) => escapeConcatPath(c)).join("\n"));
      const planned = infos.reduce((s, i) => s + i.durationS, 0);
      const { videoFrames } = await copyConcat(list, out, {
        ...options,
        expectedDurationS: planned,
      });
      // Every clip has the same parameters: the film is the first clip's kind, as long as the frames
      // ffmpeg says it wrote (no probe of the film on this path; the plan check still applies).
      const wrote =
        videoFrames !== undefined && infos[0]!.fps > 0
          ? {
              ...infos[0]!,
              durationS: videoFrames / infos[0]!.fps,
              sizeBytes: (await stat(out)).size,
            }
          : undefined;
      const starts = xfadeOffsets(
        infos.map((i) => i.durationS),
        infos.map(() => 0),
      );
      return {
        ...(await checkResult(out, "copy", planned, frame, wrote)),
        reason,
        partStartsS: [0, ...starts],
      };
    }
    const ready = (p: string) => inFilmFormat(probed.get(p)!, W, H, F);
    return {
      ...(await reencode({
        parts,
        partDur,
        ready,
        transitions,
        options,
        W,
        H,
        F,
        frame,
        work,
        out,
      })),
      reason,
    };
  });
}

/**
 * The re-encode: title card, clips and end card normalised to one size, rate and pixel format,
 * joined by xfade or cut, rendered piece by piece (`renderInSegments`: memory bounded whatever the
 * clip count), then the audio bed laid under in a last pass that copies the video.
 */
async function reencode(c: {
  parts: (string | Card)[];
  partDur: (p: string | Card) => number;
  ready: (clip: string) => boolean;
  transitions: (Transition | undefined)[];
  options: ConcatOptions;
  W: number;
  H: number;
  F: number;
  frame: number;
  work: string;
  out: string;
}): Promise<Omit<ConcatResult, "reason">> {
  const { parts, partDur, ready, transitions, options, W, H, F, frame, work, out } = c;
  const seq = filmSequence(parts, transitions, options);
  const segs: Segmentable[] = seq.parts.map((p) =>
    typeof p === "string"
      ? { kind: "clip" as const, file: p, durationS: partDur(p), ready: ready(p) }
      : cardPart(p),
  );
  const segTransitions = seq.transitions;
  // Whole frames: the film's length is the sum of its pieces, exactly.
  const { bodies, transitions: tFrames } = segmentFrames(
    segs.map((s) => s.durationS),
    segTransitions.map((t) => t?.durationS ?? 0),
    F,
  );
  const planned = (bodies.reduce((a, b) => a + b, 0) + tFrames.reduce((a, b) => a + b, 0)) / F;
  const overlapped = bodies.findIndex((b) => b < 0);
  if (overlapped >= 0)
    throw new AssembleError(
      `the transitions into and out of part ${overlapped + 1} overlap: together they are longer than it`,
    );
  const video = options.audio ? join(work, "video.mp4") : out;
  await renderInSegments(
    {
      parts: segs,
      transitions: segTransitions,
      W,
      H,
      F,
      preset: options.preset ?? DEFAULT_X264_PRESET,
      work,
    },
    video,
    { ...options, expectedDurationS: planned },
  );
  if (options.audio) {
    const a = options.audio;
    const fadeOut = Math.min(a.fadeOutS ?? 2, planned / 2);
    const af = `atrim=0:${planned.toFixed(3)},asetpts=PTS-STARTPTS,volume=${a.volume ?? 1},afade=t=in:d=${Math.min(a.fadeInS ?? 1, planned / 2)},afade=t=out:st=${(planned - fadeOut).toFixed(3)}:d=${fadeOut}`;
    await runToFile(
      (tmp) =>
        command()
          .input(video)
          .input(a.file)
          .inputOptions(["-stream_loop", "-1"])
          .outputOptions([
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "copy",
            "-af",
            af,
            "-c:a",
            "aac",
            "-b:a",
            "160k",
            "-ar",
            "48000",
            "-t",
            planned.toFixed(3),
            "-movflags",
            "+faststart",
          ])
          .output(tmp),
      out,
      { signal: options.signal },
    );
  }
  // Part k starts where the transition into it starts; the title card, if any, comes first.
  const starts = [
    0,
    ...xfadeOffsets(
      segs.map((s) => s.durationS),
      segTransitions.map((t) => t?.durationS ?? 0),
    ),
  ];
  return {
    ...(await checkResult(out, "reencode", planned, frame)),
    partStartsS: starts.slice(options.title ? 1 : 0, (options.title ? 1 : 0) + parts.length),
  };
}

/**
 * The re-encode from cached pieces (`segments`): planned piece by piece (`planFilmParts`), the
 * pieces not in the folder made, all joined by stream copy with the audio bed mixed in.
 */
async function fromPieces(
  parts: (string | Card)[],
  probed: ReadonlyMap<string, VideoInfo>,
  transitions: (Transition | undefined)[],
  options: ConcatOptions,
  segments: SegmentCache,
  out: string,
): Promise<Omit<ConcatResult, "reason">> {
  const { W, H, F } = filmFrame(probed.get(parts.find((p) => typeof p === "string")!)!, options);
  const ids = new Map(segments.ids ?? []);
  for (const p of parts) if (typeof p === "string" && !ids.has(p)) ids.set(p, await fileSha256(p));
  const plan = planFilmParts(parts, {
    transitions,
    title: options.title,
    end: options.end,
    info: (c) => probed.get(c)!,
    id: (c) => ids.get(c)!,
    W,
    H,
    F,
    preset: options.preset,
  });
  const pieces = await makeFilm(plan, out, {
    dir: segments.dir,
    together: segments.together,
    niceness: segments.niceness,
    audio: options.audio,
    signal: options.signal,
    onProgress: options.onProgress,
  });
  const first = options.title ? 1 : 0;
  return {
    ...(await checkResult(out, "reencode", plan.durationS, 1 / F)),
    partStartsS: plan.partStartsS.slice(first, first + parts.length),
    pieces,
  };
}

async function checkResult(
  out: string,
  mode: ConcatResult["mode"],
  plannedDurationS: number,
  frameS: number,
  measured?: VideoInfo,
): Promise<Omit<ConcatResult, "partStartsS" | "reason">> {
  const info =
    measured ??
    (await probe(out).catch(async (error: Error) => {
      await unlink(out).catch(() => {});
      throw new AssembleError(`assembled film is unreadable: ${error.message}`);
    }));
  // Containers round to their time base; more than two frames off means the plan was not followed.
  if (Math.abs(info.durationS - plannedDurationS) > 2 * frameS + 0.05) {
    throw new AssembleError(
      `assembled film lasts ${info.durationS.toFixed(3)} s; the plan says ${plannedDurationS.toFixed(3)} s`,
    );
  }
  return { file: out, mode, plannedDurationS, info };
}
