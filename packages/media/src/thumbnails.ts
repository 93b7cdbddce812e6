import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HailuoError } from "@hailuo/shared";
import { FONT_OPTION } from "./fonts.js";
import { probe } from "./probe.js";
import { command, runToFile, type MediaOptions } from "./run-ffmpeg.js";

/** Options of `poster`. */
export interface PosterOptions extends MediaOptions {
  /** Seconds into the clip, or `auto` for ffmpeg's most representative frame. @default "auto" */
  atS?: number | "auto";
  /** Output width in pixels (height keeps the aspect ratio). @default 640 */
  width?: number;
}

/** Writes one frame of a clip as an image (JPEG or PNG by extension); fast seek before decoding. */
export async function poster(clip: string, out: string, options: PosterOptions = {}): Promise<void> {
  const { atS = "auto", width = 640 } = options;
  const info = await probe(clip);
  await runToFile((tmp) => {
    const cmd = command().input(clip);
    if (atS === "auto") {
      // thumbnail picks the frame closest to the average of a batch: covers the whole clip.
      const n = Math.max(2, Math.min(300, Math.round(info.durationS * info.fps)));
      return cmd.outputOptions(["-vf", `thumbnail=n=${n},scale=${width}:-2`, "-frames:v", "1", "-q:v", "3", "-update", "1"]).output(tmp);
    }
    return cmd.inputOptions(["-ss", String(Math.min(atS, Math.max(0, info.durationS - 0.1)))]).outputOptions(["-vf", `scale=${width}:-2`, "-frames:v", "1", "-q:v", "3", "-update", "1"]).output(tmp);
  }, out, options);
}

/** One tile of a contact sheet. */
export interface SheetItem {
  /** A clip or an image (a poster already made). */
  file: string;
  /** Text under the frame, e.g. "04-storm · 10 s". */
  label: string;
}

/** Options of `contactSheet`. */
export interface SheetOptions extends MediaOptions {
  /** @default 4 */
  columns?: number;
  /** Width of one tile. @default 320 */
  tileWidth?: number;
}

/** The sheet's size for a layout, so callers and tests know what to expect. */
export function sheetSize(count: number, { columns = 4, tileWidth = 320, aspect = 768 / 1366 } = {}): { width: number; height: number; rows: number; cols: number } {
  const cols = Math.max(1, Math.min(columns, count));
  const rows = Math.ceil(count / cols);
  const tileH = 2 * Math.round((tileWidth * aspect) / 2) + LABEL_H;
  return { cols, rows, width: cols * tileWidth + (cols - 1) * PAD + 2 * PAD, height: rows * tileH + (rows - 1) * PAD + 2 * PAD };
}

const LABEL_H = 36;
const PAD = 8;

/**
 * Writes a contact sheet: one labelled frame per item in a grid (scene id and duration under
 * each), for skimming a whole run at a glance.
 */
export async function contactSheet(items: SheetItem[], out: string, options: SheetOptions = {}): Promise<{ width: number; height: number }> {
  if (items.length === 0) throw new HailuoError("thumbnail_failed", "a contact sheet needs at least one item");
  const { columns = 4, tileWidth = 320 } = options;
  const size = sheetSize(items.length, { columns, tileWidth });
  const tileH = size.height === 0 ? 0 : 2 * Math.round((tileWidth * 768) / 1366 / 2);
  const work = await mkdtemp(join(tmpdir(), "hailuo-sheet-"));
  try {
    const cmd = command();
    const filters: string[] = [];
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      const labelFile = join(work, `label${i}.txt`);
      await writeFile(labelFile, it.label);
      const isImage = /\.(jpe?g|png|webp)$/i.test(it.file);
      if (isImage) cmd.input(it.file);
      else {
        const info = await probe(it.file);
        cmd.input(it.file).inputOptions(["-ss", (info.durationS / 2).toFixed(3)]);
      }
      filters.push(
        `[${i}:v]scale=${tileWidth}:${tileH}:force_original_aspect_ratio=decrease,pad=${tileWidth}:${tileH}:(ow-iw)/2:(oh-ih)/2,setsar=1,trim=end_frame=1,` +
          `pad=${tileWidth}:${tileH + LABEL_H}:0:0:color=0x161616,drawtext=${FONT_OPTION}:expansion=none:textfile=${labelFile}:fontsize=18:fontcolor=white:x=10:y=${tileH + 9},format=yuv420p[t${i}]`,
      );
    }
    // Blank tiles fill the last row so `tile` emits its frame.
    const blanks = size.cols * size.rows - items.length;
    for (let b = 0; b < blanks; b++) filters.push(`color=c=0x101010:s=${tileWidth}x${tileH + LABEL_H}:d=0.04,format=yuv420p,trim=end_frame=1[b${b}]`);
    const labels = [...items.map((_, i) => `[t${i}]`), ...Array.from({ length: blanks }, (_, b) => `[b${b}]`)].join("");
    filters.push(`${labels}concat=n=${items.length + blanks}:v=1:a=0,tile=${size.cols}x${size.rows}:padding=${PAD}:margin=${PAD}:color=0x0a0a0a[sheet]`);
    await runToFile((tmp) => cmd.complexFilter(filters.join(";")).outputOptions(["-map", "[sheet]", "-frames:v", "1", "-q:v", "3", "-update", "1"]).output(tmp), out, options);
    return { width: size.width, height: size.height };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Options of `animatedPreview`. */
export interface PreviewOptions extends MediaOptions {
  /** @default 480 */
  width?: number;
  /** @default 10 */
  fps?: number;
  /** Seconds of the clip to show, from its middle. @default 3 */
  durationS?: number;
}

/** Writes a short animated preview: GIF with a generated palette, or WebP, by the extension of `out`. */
export async function animatedPreview(clip: string, out: string, options: PreviewOptions = {}): Promise<void> {
  const { width = 480, fps = 10, durationS = 3 } = options;
  const info = await probe(clip);
  const len = Math.min(durationS, info.durationS);
  const start = Math.max(0, (info.durationS - len) / 2);
  const webp = /\.webp$/i.test(out);
  await runToFile((tmp) => {
    const cmd = command().input(clip).inputOptions(["-ss", start.toFixed(3), "-t", len.toFixed(3)]);
    if (webp) return cmd.outputOptions(["-vf", `fps=${fps},scale=${width}:-2:flags=lanczos`, "-c:v", "libwebp", "-lossless", "0", "-q:v", "70", "-loop", "0", "-an"]).output(tmp);
    return cmd
      .outputOptions(["-filter_complex", `fps=${fps},scale=${width}:-2:flags=lanczos,split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer:bayer_scale=5`, "-loop", "0", "-an"])
      .output(tmp);
  }, out, options);
}
