import { writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import pLimit from "p-limit";
import { FONT_OPTION } from "./fonts.js";
import { settleAll } from "./media-work.js";
import { command, copyConcat, runCommand, type MediaOptions } from "./run-ffmpeg.js";

/** Parts one ffmpeg renders at most (each input costs tens of MiB of decoder and filter buffers). */
const CHUNK = 8;

/**
 * One part of the film: a clip, or a card drawn on a colour. `ready` marks a clip already in the
 * film's size, rate and pixel format (known from its probe): it skips the normalising filter.
 */
export type Segmentable =
  | { kind: "clip"; file: string; durationS: number; ready?: boolean }
  | { kind: "card"; text: string; color: string; durationS: number };
/**
 * Where each run of parts starts: as few runs of at most `max` parts as can be, their count a
 * multiple of the pieces encoded at once and their sizes within one of each other, so no core
 * sits idle while the last, shorter run is encoded alone.
 */
export function runStarts(n: number, max: number, together: number): number[] {
  let runs = Math.ceil(n / max);
  if (runs > 1) runs = Math.min(n, Math.ceil(runs / together) * together);
  return Array.from({ length: runs }, (_, k) => Math.round((k * n) / runs));
}

/**
 * The filters that blend a transition window: `from`'s last frames into `to`'s first, `frames` long,
 * labelled `out`. A plain crossfade is the outgoing window faded out on its alpha and laid over the
 * incoming one, all in 4:2:0: ffmpeg 5's xfade converts both windows to 4:4:4 and back, which made
 * the fades a tenth of a film's encoding time. Its weights are xfade's (frame n: 1 − n/frames of the
 * outgoing clip); every other transition is xfade's own.
 */
export function blendWindow(
  type: string,
  from: string,
  to: string,
  out: string,
  frames: number,
  fps: number,
): string[] {
  const d = (frames / fps).toFixed(6);
  const tail = `trim=end_frame=${frames},settb=1/${fps},setpts=N[${out}]`;
  if (type === "fade")
    return [
      `[${from}]format=yuva420p,fade=t=out:st=0:d=${d}:alpha=1[${out}a]`,
      `[${to}][${out}a]overlay=format=yuv420:eof_action=pass,${tail}`,
    ];
  return [
    `[${from}][${to}]xfade=transition=${type}:duration=${d}:offset=0,trim=end_frame=${frames},format=yuv420p,settb=1/${fps},setpts=N[${out}]`,
  ];
}

/**
 * Scales and pads any clip into the film's frame (`W`×`H`, square pixels, `F` fps, 4:2:0): the
 * normalising filter every part goes through unless it is already in that format.
 */
export function normFilter(W: number, H: number, F: number): string {
  return `scale=${W}:${H}:force_original_aspect_ratio=decrease,pad=${W}:${H}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,fps=${F},format=yuv420p`;
}

/** What a clip already in the film's format goes through: its aspect flag and rate (xfade compares time bases). */
export function readyFilter(F: number): string {
  return `setsar=1,fps=${F}`;
}

/** A card's colour, as an ffmpeg lavfi source of `durationS` seconds. */
export function cardSource(color: string, W: number, H: number, F: number, durationS: number) {
  return `color=c=${color.replace("#", "0x")}:s=${W}x${H}:r=${F}:d=${durationS}`;
}

/** A card's text drawn centred, white, a 11th of the frame high (read from a file: no escaping of its text). */
export function cardFilter(textFile: string, H: number): string {
  return `drawtext=${FONT_OPTION}:expansion=none:textfile=${textFile}:fontsize=${Math.round(H / 11)}:fontcolor=white:x=(w-tw)/2:y=(h-th)/2`;
}

/** What `renderInSegments` needs: the parts, the transition after each (undefined = cut), the frame. */
export interface SegmentPlan {
  parts: Segmentable[];
  transitions: ({ type: string; durationS: number } | undefined)[];
  W: number;
  H: number;
  F: number;
  preset: string;
  work: string;
}

/**
 * Frame counts of a plan: each part's body (what no transition overlaps) and each transition.
 * Whole frames throughout, so the pieces add up to the film's length exactly.
 */
export function segmentFrames(
  durationsS: number[],
  transitionsS: number[],
  fps: number,
): { bodies: number[]; transitions: number[] } {
  const t = transitionsS.map((s) => Math.round(s * fps));
  const bodies = durationsS.map((d, k) => Math.round(d * fps) - (t[k - 1] ?? 0) - (t[k] ?? 0));
  return { bodies, transitions: t };
}

/**
 * The film re-encoded piece by piece: runs of up to 8 parts with the transitions inside them and
 * the one into the next run (that run's first part read only as far as the window), then every
 * piece (same encoder settings, each starting on a keyframe) is joined by the concat demuxer
 * without a second encode. No ffmpeg holds more than 9 inputs, so memory does not grow with the
 * clip count; two pieces are encoded at a time. Only the transition windows are blended (`blendWindow`);
 * the bodies go straight to concat, and no frame is decoded twice but a window's.
 */
export async function renderInSegments(
  plan: SegmentPlan,
  out: string,
  options: MediaOptions & { expectedDurationS: number },
): Promise<void> {
  const { parts, transitions, W, H, F, preset, work } = plan;
  const frames = segmentFrames(
    parts.map((p) => p.durationS),
    transitions.map((t) => t?.durationS ?? 0),
    F,
  );
  const norm = normFilter(W, H, F);
  // Pieces encoded at once share the cores: each encoder gets its share, not threads for all of them
  // (two x264s of three threads each on two cores spent a few per cent more CPU on the same frames).
  const together = Math.min(2, availableParallelism());
  const threads = String(Math.max(1, Math.floor(availableParallelism() / together)));
  const encode = [
    "-an",
    "-c:v",
    "libx264",
    "-threads",
    threads,
    "-preset",
    preset,
    "-crf",
    "20",
    "-pix_fmt",
    "yuv420p",
    "-r",
    String(F),
    "-video_track_timescale",
    String(F * 1000),
  ];
  // Each card's text is written once, before any piece that draws it runs (two pieces may share a card).
  for (const [k, p] of parts.entries())
    if (p.kind === "card") await writeFile(join(work, `card${k}.txt`), p.text);
  // Input k and the filter that turns it into the normalised stream (cards: drawn text on a colour).
  // A clip read only for its first `firstFrames` stops being decoded there.
  const source = (k: number, slot: number, firstFrames?: number) => {
    const p = parts[k]!;
    // One decoder thread: two pieces already keep the cores busy, and each frame thread of a
    // decoder holds its own reference frames (9 inputs × 3 threads of 1366×768 frames).
    const reading = [
      "-threads",
      "1",
      ...(firstFrames === undefined ? [] : ["-t", ((firstFrames + 2) / F).toFixed(6)]),
    ];
    // A clip already in the film's format skips scaling and padding; its aspect flag and rate (which
    // sets the time base xfade compares) are still set, as on every other input.
    if (p.kind === "clip")
      return {
        input: p.file,
        inputOptions: reading,
        filter: `[${slot}:v]${p.ready ? readyFilter(F) : norm}`,
      };
    const textFile = join(work, `card${k}.txt`);
    return {
      input: cardSource(p.color, W, H, F, p.durationS),
      inputOptions: ["-f", "lavfi", ...reading],
      filter: `[${slot}:v]${cardFilter(textFile, H)},${norm}`,
    };
  };
  const pieces: { file: string; build: () => ReturnType<typeof command> }[] = [];
  const total = (k: number) => Math.round(parts[k]!.durationS * F);
  // Up to CHUNK consecutive parts in one ffmpeg (xfade or concat inside it). A transition into the
  // next run is made here too, from that run's first part read up to the window's end; the next
  // run starts after the window. One long encode per run, never more than CHUNK + 1 inputs.
  const starts = runStarts(parts.length, CHUNK, together);
  for (const [r, a] of starts.entries()) {
    const b = (starts[r + 1] ?? parts.length) - 1;
    const into =
      b + 1 < parts.length && transitions[b] && frames.transitions[b]! > 0
        ? frames.transitions[b]!
        : 0;
    const last = into ? b + 1 : b;
    const from = frames.transitions[a - 1] ?? 0;
    const lens = Array.from({ length: last - a + 1 }, (_, j) =>
      a + j > b ? into : total(a + j) - (j === 0 ? from : 0),
    );
    const inner = Array.from({ length: last - a }, (_, j) => frames.transitions[a + j] ?? 0);
    const expected = lens.reduce((x, y) => x + y, 0) - inner.reduce((x, y) => x + y, 0);
    if (expected <= 0) continue;
    const file = join(work, `piece-${String(pieces.length).padStart(5, "0")}.mp4`);
    pieces.push({
      file,
      build: () => {
        const cmd = command();
        const filters: string[] = [];
        const joined: string[] = [];
        for (let j = 0; j <= last - a; j++) {
          const src = source(a + j, j, a + j > b ? into : undefined);
          cmd.input(src.input).inputOptions(src.inputOptions);
          const start = j === 0 ? from : 0;
          const head = j > 0 ? inner[j - 1]! : 0;
          const tail = j < last - a ? inner[j]! : 0;
          const body = lens[j]! - head - tail;
          // Each part splits into its head window, body and tail window: only the windows go through
          // xfade, which (ffmpeg 5–7) works in 4:4:4 and would convert every frame it passes twice.
          const outs = [head, body, tail].map((n, w) => (n > 0 ? `w${j}_${w}` : undefined));
          const live = outs.filter(Boolean);
          filters.push(
            `${src.filter}${live.length > 1 ? `,split=${live.length}${live.map((o) => `[s${o}]`).join("")}` : `[s${live[0]}]`}`,
          );
          const ranges: [number, number][] = [
            [start, start + head],
            [start + head, start + head + body],
            [start + head + body, start + lens[j]!],
          ];
          outs.forEach(
            (o, w) =>
              o &&
              filters.push(
                `[s${o}]trim=start_frame=${ranges[w]![0]}:end_frame=${ranges[w]![1]},setpts=PTS-STARTPTS[${o}]`,
              ),
          );
          if (outs[0]) {
            filters.push(
              ...blendWindow(
                transitions[a + j - 1]!.type,
                `w${j - 1}_2`,
                outs[0],
                `x${j}`,
                head,
                F,
              ),
            );
            joined.push(`[x${j}]`);
          }
          if (outs[1]) joined.push(`[${outs[1]}]`);
        }
        // Exactly the planned frames at exact 1/F steps: no output rate conversion can add one.
        filters.push(
          `${joined.join("")}concat=n=${joined.length}:v=1:a=0,trim=end_frame=${expected},settb=1/${F},setpts=N[out]`,
        );
        return cmd
          .complexFilter(filters.join(";"))
          .outputOptions(["-map", "[out]", ...encode])
          .output(file);
      },
    });
  }
  const limit = pLimit(together);
  let done = 0;
  // A failed piece stops the others, and none is left running when this returns.
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  await settleAll(
    pieces.map((p) =>
      limit(async () => {
        await runCommand(p.build(), p.file, { signal });
        options.onProgress?.((++done / pieces.length) * 95);
      }),
    ),
    () => stop.abort(),
  );
  const list = join(work, "pieces.ffconcat");
  await writeFile(
    list,
    `ffconcat version 1.0\n${pieces.map((p) => `file '${p.file.replaceAll("'", "'\\''")}'`).join("\n")}\n`,
  );
  await copyConcat(list, out, { map: "0:v", signal: options.signal });
  options.onProgress?.(100);
}
