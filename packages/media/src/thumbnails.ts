import { rename, writeFile } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { HailuoError } from "@hailuo/shared";
import { FONT_OPTION } from "./fonts.js";
import { mediaIoError, settleAll, withWorkDir } from "./media-work.js";
import { probe } from "./probe.js";
import { command, concatInput, runCommand, runToFile, type MediaOptions } from "./run-ffmpeg.js";

/** Options of `poster`. */
export interface PosterOptions extends MediaOptions {
  /** Seconds into the clip, or `auto`: 40 % in, past an opening that is often still. @default "auto" */
  atS?: number | "auto";
  /** Output width in pixels (height keeps the aspect ratio). @default 640 */
  width?: number;
  /** The clip's duration when already known (from the journal): no probe. */
  durationS?: number;
}

/** Writes one frame of a clip as an image (JPEG or PNG by extension): a fast seek, then one frame decoded. */
export async function poster(
  clip: string,
  out: string,
  options: PosterOptions = {},
): Promise<void> {
  const { atS = "auto", width = 640 } = options;
  try {
    const durationS = options.durationS ?? (await probe(clip)).durationS;
    const at = atS === "auto" ? durationS * 0.4 : Math.min(atS, Math.max(0, durationS - 0.1));
    await runToFile(
      (tmp) =>
        command()
          .input(clip)
          .inputOptions(["-ss", at.toFixed(3)])
          .outputOptions([
            "-vf",
            // Never wider than the clip: scaling up adds bytes and CPU, not detail.
            `scale='min(${width},iw)':-2`,
            "-frames:v",
            "1",
            "-q:v",
            "3",
            "-update",
            "1",
          ])
          .output(tmp),
      out,
      options,
    );
  } catch (error) {
    throw mediaIoError(error, "thumbnail_failed", `poster ${basename(out)}`);
  }
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
  /** Rows on one page; more items go on further pages (`sheet-2.jpg`, …). @default 25 */
  rowsPerPage?: number;
}

/** The sheet's size for a layout, so callers and tests know what to expect. */
export function sheetSize(
  count: number,
  { columns = 4, tileWidth = 320, aspect = 768 / 1366 } = {},
): { width: number; height: number; rows: number; cols: number } {
  const cols = Math.max(1, Math.min(columns, count));
  const rows = Math.ceil(count / cols);
  const tileH = 2 * Math.round((tileWidth * aspect) / 2) + LABEL_H;
  return {
    cols,
    rows,
    width: cols * tileWidth + (cols - 1) * PAD + 2 * PAD,
    height: rows * tileH + (rows - 1) * PAD + 2 * PAD,
  };
}

const LABEL_H = 36;
const PAD = 8;

/** A value in an ffconcat script: single-quoted, a quote written as '\'' . */
const ffconcatQuote = (v: string) => `'${v.replace(/[\r\n]+/g, " ").replaceAll("'", "'\\''")}'`;

/**
 * Writes a contact sheet: one labelled frame per item in a grid (scene id and duration under each),
 * for skimming a whole run at a glance. However many items, it is one ffmpeg run over a concat
 * script (no argument grows with the count); each tile's label rides on its frame as metadata.
 * Past `rowsPerPage` rows the sheet continues on further pages: `out`, then `<out>-2.jpg`, …
 */
export async function contactSheet(
  items: SheetItem[],
  out: string,
  options: SheetOptions = {},
): Promise<{ width: number; height: number; pages: string[] }> {
  if (items.length === 0)
    throw new HailuoError("thumbnail_failed", "a contact sheet needs at least one item");
  const { columns = 4, tileWidth = 320, rowsPerPage = 25 } = options;
  const perPage = Math.max(1, Math.min(columns, items.length)) * rowsPerPage;
  const size = sheetSize(Math.min(items.length, perPage), { columns, tileWidth });
  const tileH = 2 * Math.round((tileWidth * 768) / 1366 / 2);
  // The pages are made in a scratch folder beside `out` and renamed into place: same filesystem.
  return withWorkDir(out, "hailuo-sheet-", async (work) => {
    // A video item gives one frame from its middle (callers normally pass posters they already have).
    const frames = await settleAll(
      items.map(async (it, i) => {
        if (/\.(jpe?g|png|webp)$/i.test(it.file)) return it.file;
        const frame = join(work, `frame${i}.jpg`);
        await poster(it.file, frame, { width: tileWidth, signal: options.signal });
        return frame;
      }),
    );
    const script = join(work, "tiles.ffconcat");
    await writeFile(
      script,
      `ffconcat version 1.0\n${items.map((it, i) => `file ${ffconcatQuote(frames[i]!)}\nfile_packet_meta label ${ffconcatQuote(it.label)}\n`).join("")}`,
    );
    const pages = Math.ceil(items.length / perPage);
    const vf =
      `scale=${tileWidth}:${tileH}:force_original_aspect_ratio=decrease,pad=${tileWidth}:${tileH}:(ow-iw)/2:(oh-ih)/2,setsar=1,` +
      `pad=${tileWidth}:${tileH + LABEL_H}:0:0:color=0x161616,drawtext=${FONT_OPTION}:text='%{metadata\\:label}':fontsize=18:fontcolor=white:x=10:y=${tileH + 9},format=yuv420p,` +
      // One page a second: no output rate can then make the muxer repeat a page.
      `tile=${size.cols}x${size.rows}:padding=${PAD}:margin=${PAD}:color=0x0a0a0a,settb=1,setpts=N`;
    const cmd = (output: string) =>
      concatInput(script).outputOptions(["-vf", vf, "-r", "1", "-q:v", "3"]).output(output);
    if (pages === 1) {
      await runToFile(
        (tmp) => cmd(tmp).outputOptions(["-frames:v", "1", "-update", "1"]),
        out,
        options,
      );
      return { width: size.width, height: size.height, pages: [out] };
    }
    await runCommand(cmd(join(work, "page-%05d.jpg")), out, options);
    const ext = extname(out);
    const names = Array.from({ length: pages }, (_, p) =>
      p === 0 ? out : `${out.slice(0, out.length - ext.length)}-${p + 1}${ext}`,
    );
    for (const [p, name] of names.entries())
      await rename(join(work, `page-${String(p + 1).padStart(5, "0")}.jpg`), name);
    return { width: size.width, height: size.height, pages: names };
  }).catch((error: unknown) => {
    throw mediaIoError(error, "thumbnail_failed", `contact sheet ${basename(out)}`);
  });
}

/** Options of `animatedPreview`. */
export interface PreviewOptions extends MediaOptions {
  /** @default 480 */
  width?: number;
  /** @default 10 */
  fps?: number;
  /** Seconds of the clip to show, from its middle. @default 3 */
  durationS?: number;
  /** The clip's duration when already known (from the journal): no probe. */
  clipDurationS?: number;
}

/** Writes a short animated preview: GIF with a generated palette, or WebP, by the extension of `out`. */
export async function animatedPreview(
  clip: string,
  out: string,
  options: PreviewOptions = {},
): Promise<void> {
  const { width = 480, fps = 10, durationS = 3 } = options;
  const clipS = options.clipDurationS ?? (await probe(clip)).durationS;
  const len = Math.min(durationS, clipS);
  const start = Math.max(0, (clipS - len) / 2);
  const webp = /\.webp$/i.test(out);
  const made = runToFile(
    (tmp) => {
      const cmd = command()
        .input(clip)
        .inputOptions(["-ss", start.toFixed(3), "-t", len.toFixed(3)]);
      if (webp)
        return cmd
          .outputOptions([
            "-vf",
            `fps=${fps},scale='min(${width},iw)':-2:flags=lanczos`,
            "-c:v",
            "libwebp",
            "-lossless",
            "0",
            "-q:v",
            "70",
            "-loop",
            "0",
            "-an",
          ])
          .output(tmp);
      return cmd
        .outputOptions([
          "-filter_complex",
          `fps=${fps},scale='min(${width},iw)':-2:flags=lanczos,split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer:bayer_scale=5`,
          "-loop",
          "0",
          "-an",
        ])
        .output(tmp);
    },
    out,
    options,
  );
  await made.catch((error: unknown) => {
    throw mediaIoError(error, "thumbnail_failed", `preview ${basename(out)}`);
  });
}
