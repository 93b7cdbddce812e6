import { writeFile, unlink, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { HailuoError } from "@hailuo/shared";
import { audioBedProblem } from "./audio-bed.js";
import { mediaIoError, withWorkDir } from "./media-work.js";
import { probe, type VideoInfo } from "./probe.js";
import { command, copyConcat, runToFile, type MediaOptions } from "./run-ffmpeg.js";
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
}

/** The assembled file does not match the plan. */
export class AssembleError extends HailuoError {
  constructor(message: string) {
    super("assemble_failed", message, { retryable: false });
  }
}

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
  const transitions = parts.slice(0, -1).map((_, i) => {
    const t = Array.isArray(options.transitions) ? options.transitions[i] : options.transitions;
    return t && t.type !== "cut" && t.durationS > 0 ? t : undefined;
  });
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
  const W = options.width ?? infos[0]!.width;
  const H = options.height ?? infos[0]!.height;
  const F = options.fps ?? (Math.round(infos[0]!.fps) || 24);
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
    // Already the film's frame: same size, this exact constant rate, 4:2:0 (what the encode writes).
    const ready = (p: string) => {
      const i = probed.get(p)!;
      return (
        i.width === W &&
        i.height === H &&
        i.pixFmt === "yuv420p" &&
        i.fpsRational === `${F}/1` &&
        i.fps === F
      );
    };
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
  const card = (k: Card): Segmentable => ({
    kind: "card",
    text: k.text,
    color: k.color ?? "#101820",
    durationS: k.durationS,
  });
  const segs: Segmentable[] = [
    ...(options.title ? [card(options.title)] : []),
    ...parts.map((p) =>
      typeof p === "string"
        ? { kind: "clip" as const, file: p, durationS: partDur(p), ready: ready(p) }
        : card(p),
    ),
    ...(options.end ? [card(options.end)] : []),
  ];
  const segTransitions: (Transition | undefined)[] = [
    ...(options.title ? [transitions.find(Boolean) ?? { type: "fade", durationS: 0.5 }] : []),
    ...transitions,
    ...(options.end ? [transitions.find(Boolean) ?? { type: "fade", durationS: 0.5 }] : []),
  ];
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
