import { writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import pLimit from "p-limit";
import { FONT_OPTION } from "./fonts.js";
import { command, runCommand, runToFile, type MediaOptions } from "./run-ffmpeg.js";

/** One part of the film: a clip, or a card drawn on a colour. */
export type Segmentable = { kind: "clip"; file: string; durationS: number } | { kind: "card"; text: string; color: string; durationS: number };

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
export function segmentFrames(durationsS: number[], transitionsS: number[], fps: number): { bodies: number[]; transitions: number[] } {
  const t = transitionsS.map((s) => Math.round(s * fps));
  const bodies = durationsS.map((d, k) => Math.round(d * fps) - (t[k - 1] ?? 0) - (t[k] ?? 0));
  return { bodies, transitions: t };
}

/**
 * The film re-encoded piece by piece: each part's body on its own, each transition from the two
 * parts it joins, then every piece (same encoder settings, each starting on a keyframe) joined by
 * the concat demuxer without a second encode. No ffmpeg ever holds more than two inputs, so
 * memory does not grow with the clip count, and two pieces are encoded at a time.
 */
export async function renderInSegments(plan: SegmentPlan, out: string, options: MediaOptions & { expectedDurationS: number }): Promise<void> {
  const { parts, transitions, W, H, F, preset, work } = plan;
  const frames = segmentFrames(parts.map((p) => p.durationS), transitions.map((t) => t?.durationS ?? 0), F);
  const norm = `scale=${W}:${H}:force_original_aspect_ratio=decrease,pad=${W}:${H}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,fps=${F},format=yuv420p`;
  const encode = ["-an", "-c:v", "libx264", "-preset", preset, "-crf", "20", "-pix_fmt", "yuv420p", "-r", String(F), "-video_track_timescale", String(F * 1000)];
  // Input k and the filter that turns it into the normalised stream [v<k>] (cards: drawn text on a colour).
  const source = async (k: number, slot: number) => {
    const p = parts[k]!;
    if (p.kind === "clip") return { input: [p.file], inputOptions: [] as string[], filter: `[${slot}:v]${norm}` };
    const textFile = join(work, `card${k}.txt`);
    await writeFile(textFile, p.text);
    return {
      input: [`color=c=${p.color.replace("#", "0x")}:s=${W}x${H}:r=${F}:d=${p.durationS}`],
      inputOptions: ["-f", "lavfi"],
      filter: `[${slot}:v]drawtext=${FONT_OPTION}:expansion=none:textfile=${textFile}:fontsize=${Math.round(H / 11)}:fontcolor=white:x=(w-tw)/2:y=(h-th)/2,${norm}`,
    };
  };
  type Piece = { file: string; build: () => Promise<ReturnType<typeof command>> };
  const pieces: Piece[] = [];
  for (let k = 0; k < parts.length; k++) {
    const from = frames.transitions[k - 1] ?? 0;
    if (frames.bodies[k]! > 0) {
      const file = join(work, `piece-${String(pieces.length).padStart(5, "0")}.mp4`);
      pieces.push({
        file,
        build: async () => {
          const s = await source(k, 0);
          return command().input(s.input[0]!).inputOptions(s.inputOptions).complexFilter(`${s.filter},trim=start_frame=${from}:end_frame=${from + frames.bodies[k]!},settb=1/${F},setpts=N[out]`).outputOptions(["-map", "[out]", ...encode]).output(file);
        },
      });
    }
    const t = transitions[k];
    if (t && frames.transitions[k]! > 0 && k + 1 < parts.length) {
      const n = frames.transitions[k]!;
      const tailStart = Math.round(parts[k]!.durationS * F) - n;
      const file = join(work, `piece-${String(pieces.length).padStart(5, "0")}.mp4`);
      pieces.push({
        file,
        build: async () => {
          const a = await source(k, 0);
          const b = await source(k + 1, 1);
          const filter =
            `${a.filter},trim=start_frame=${tailStart}:end_frame=${tailStart + n},setpts=PTS-STARTPTS[a];` +
            `${b.filter},trim=end_frame=${n},setpts=PTS-STARTPTS[b];` +
            // Exactly n frames at exact 1/F steps: no output rate conversion can add one.
            `[a][b]xfade=transition=${t.type}:duration=${(n / F).toFixed(6)}:offset=0,trim=end_frame=${n},settb=1/${F},setpts=N[out]`;
          return command().input(a.input[0]!).inputOptions(a.inputOptions).input(b.input[0]!).inputOptions(b.inputOptions).complexFilter(filter).outputOptions(["-map", "[out]", ...encode]).output(file);
        },
      });
    }
  }
  const limit = pLimit(Math.min(2, availableParallelism()));
  let done = 0;
  await Promise.all(
    pieces.map((p) =>
      limit(async () => {
        await runCommand(await p.build(), p.file, { signal: options.signal });
        options.onProgress?.((++done / pieces.length) * 95);
      }),
    ),
  );
  const list = join(work, "pieces.ffconcat");
  await writeFile(list, `ffconcat version 1.0\n${pieces.map((p) => `file '${p.file.replaceAll("'", "'\\''")}'`).join("\n")}\n`);
  await runToFile((tmp) => command().input(list).inputOptions(["-f", "concat", "-safe", "0"]).outputOptions(["-map", "0:v", "-c", "copy", "-movflags", "+faststart"]).output(tmp), out, { signal: options.signal });
}
