import { stat } from "node:fs/promises";
import { basename, dirname, extname, isAbsolute, join, resolve } from "node:path";
import { displayPath } from "../display-path.js";
import { FieldChecker } from "@hailuo/manifest";
import {
  X264_PRESETS,
  animatedPreview,
  audioBedProblem,
  contactSheet,
  mediaIoError,
  poster,
  probe,
} from "@hailuo/media";
import {
  makeThumbnails,
  runMediaStage,
  type MediaStageOptions,
  type MediaStageResult,
} from "@hailuo/publish";
import { readRunManifest, readRunReport } from "@hailuo/runner";
import { UsageError } from "../exit-codes.js";
import { onRunFolder, type RunAtOptions } from "../run-at.js";
import { isBucketUrl } from "@hailuo/store";
import { chooseView, createProgressView } from "../progress-view.js";
import { emitJson } from "../events.js";

/** Parses `--transition name:seconds`. */
export function parseTransition(value: string | undefined): MediaStageOptions["transition"] {
  if (value === undefined) return undefined;
  // The manifest's own transition parser, so the flag and `transition:` accept exactly the same.
  const c = new FieldChecker("--transition", () => ({}));
  const t = c.transition(value, []);
  if (c.problems.length || !t)
    throw new UsageError(`--transition: ${c.problems.map((p) => p.message).join("; ")}`);
  return t;
}

/** The media stage after `run`/`resume`, and `hailuo report`. */
export async function mediaStageFor(
  runDir: string,
  opts: MediaStageOptions & { json?: boolean; shownAs?: string },
  signal?: AbortSignal,
  /** Runs the stage instead of `runMediaStage` (a film builder's finish); undefined: it had nothing. */
  stage?: (o: MediaStageOptions) => Promise<MediaStageResult | undefined>,
): Promise<void> {
  const manifest = await readRunManifest(runDir);
  const view = await createProgressView(chooseView(Boolean(opts.json)));
  try {
    // The media functions name their own failures; what the stage does around them (folders,
    // index.html) gets a code here too, never a bare errno.
    const o: MediaStageOptions = {
      ...opts,
      runAddress: opts.shownAs,
      onProgress: view.media,
      onWarning: (message) => view.onEvent({ type: "warning", message }),
      signal,
    };
    const made = stage ? stage(o).then((r) => r ?? runMediaStage(runDir, manifest, o)) : undefined;
    const r = await (made ?? runMediaStage(runDir, manifest, o)).catch((error: unknown) => {
      throw mediaIoError(
        error,
        opts.assemble === false ? "thumbnail_failed" : "assemble_failed",
        `media stage of ${displayPath(runDir)}`,
      );
    });
    // A bucket run is named by its address: its scratch folder is gone once uploaded.
    const rel = opts.shownAs ?? displayPath(runDir);
    const inRun = (file: string) => (opts.shownAs ? `${opts.shownAs}/${file}` : join(rel, file));
    // A film written outside the run folder (--out) is named by its own absolute path.
    const filmPath = r.film && (isAbsolute(r.film.file) ? r.film.file : inRun(r.film.file));
    if (opts.json) {
      emitJson({
        type: "media_done",
        ...(r.film
          ? {
              film: filmPath,
              filmSeconds: r.film.durationS,
              filmMode: r.film.mode,
              filmWhy: r.film.reason,
            }
          : {}),
        ...(r.sheet ? { sheet: inRun(r.sheet) } : {}),
        page: inRun(r.page),
      });
      return;
    }
    view.stop();
    if (r.film)
      view.line(
        `film: ${filmPath} (${r.film.durationS.toFixed(1)} s; ${r.film.reason ?? r.film.mode})`,
      );
    if (r.sheet) view.line(`contact sheet: ${inRun(r.sheet)}`);
    view.line(`page: ${inRun(r.page)}`);
  } finally {
    view.stop();
  }
}

/** `hailuo assemble <run>`: (re)make the film from the clips the run has now. */
export async function assembleCommand(
  address: string,
  opts: {
    transition?: string;
    audio?: string;
    out?: string;
    placeholders?: boolean;
    preset?: string;
    json?: boolean;
  } & RunAtOptions,
  signal: AbortSignal,
): Promise<number> {
  if (opts.out && isBucketUrl(address))
    throw new UsageError(
      "--out writes a film beside a folder run; a bucket run's film goes to its bucket",
    );
  return onRunFolder(address, opts, (runDir) =>
    assembleIn(runDir, opts, signal, isBucketUrl(address) ? address : undefined),
  );
}

async function assembleIn(
  runDir: string,
  opts: Parameters<typeof assembleCommand>[1],
  signal: AbortSignal,
  shownAs: string | undefined,
): Promise<number> {
  if (opts.preset !== undefined && !(X264_PRESETS as readonly string[]).includes(opts.preset))
    throw new UsageError(
      `--preset must be one of ${X264_PRESETS.join(", ")}, got ${JSON.stringify(opts.preset)}`,
    );
  // Not just "exists": a FIFO, a device or a directory would hang or fail the film at its very end.
  const audioProblem = opts.audio ? await audioBedProblem(opts.audio, { signal }) : undefined;
  if (audioProblem) throw new UsageError(`--audio: ${audioProblem}`);
  const report = await readRunReport(runDir);
  if (!report.items.some((i) => i.file)) {
    process.stderr.write(
      `hailuo: nothing to assemble in ${displayPath(runDir)}: it has no finished clip yet (run or resume it first)\n`,
    );
    return 1;
  }
  await mediaStageFor(
    runDir,
    {
      assemble: true,
      transition: parseTransition(opts.transition),
      audioFile: opts.audio && resolve(opts.audio),
      filmOut: opts.out && resolve(opts.out),
      placeholders: opts.placeholders,
      preset: opts.preset,
      json: opts.json,
      shownAs,
    },
    signal,
  );
  return 0;
}

/** `hailuo report <run-dir>`: rewrite index.html (and thumbnails) without touching the film. */
export async function reportCommand(
  address: string,
  opts: { json?: boolean } & RunAtOptions,
  signal: AbortSignal,
): Promise<number> {
  const shownAs = isBucketUrl(address) ? address : undefined;
  await onRunFolder(address, opts, (runDir) =>
    mediaStageFor(runDir, { assemble: false, json: opts.json, shownAs }, signal),
  );
  return 0;
}

/** `hailuo thumbs <run-dir | video…>`: posters, a contact sheet and optional GIFs. */
export async function thumbsCommand(
  targets: string[],
  opts: { sheet?: string; gif?: boolean; out?: string; json?: boolean } & RunAtOptions,
  signal: AbortSignal,
): Promise<number> {
  let columns = 4;
  let maxItems = Infinity;
  if (opts.sheet) {
    const m = /^(\d+)(?:x(\d+))?$/.exec(opts.sheet);
    if (!m || Number(m[1]) < 1)
      throw new UsageError(`--sheet takes COLSxROWS, e.g. 4x3; got "${opts.sheet}"`);
    columns = Number(m[1]);
    if (m[2]) maxItems = columns * Number(m[2]);
  }
  const first = targets[0]!;
  if (targets.length === 1 && isBucketUrl(first))
    // A bucket run: made in scratch and uploaded; named by the bucket's address.
    return onRunFolder(first, opts, (dir) => runThumbs(dir, first));
  if (targets.length === 1 && (await stat(first)).isDirectory()) return runThumbs(first, first);
  async function runThumbs(dir: string, shownAs: string): Promise<number> {
    const manifest = await readRunManifest(dir);
    manifest.thumbnails = {
      ...manifest.thumbnails,
      sheetColumns: columns,
      preview: opts.gif ? "gif" : "none",
    };
    const report = await readRunReport(dir, manifest);
    report.items = report.items.slice(0, maxItems);
    const r = await makeThumbnails(dir, manifest, report, { signal });
    const at = (f: string) => (isBucketUrl(shownAs) ? `${shownAs}/${f}` : join(shownAs, f));
    const posters = Object.values(r.posters).map(at);
    if (opts.json)
      emitJson({ type: "thumbs", posters, ...(r.sheet ? { sheet: at(r.sheet) } : {}) });
    else process.stdout.write(`${posters.length} poster(s)${r.sheet ? `, ${at(r.sheet)}` : ""}\n`);
    return 0;
  }
  const items: { file: string; label: string }[] = [];
  for (const video of targets.slice(0, maxItems)) {
    const info = await probe(video);
    const stem = join(dirname(video), basename(video, extname(video)));
    await poster(video, `${stem}.jpg`, { signal });
    if (opts.gif) await animatedPreview(video, `${stem}.gif`, { signal });
    items.push({
      file: `${stem}.jpg`,
      label: `${basename(video, extname(video))} · ${info.durationS.toFixed(0)} s`,
    });
    if (!opts.json) process.stdout.write(`${stem}.jpg${opts.gif ? ` ${stem}.gif` : ""}\n`);
  }
  const sheet = resolve(opts.out ?? "contact-sheet.jpg");
  await contactSheet(items, sheet, { columns, signal });
  if (opts.json) emitJson({ type: "thumbs", posters: items.map((i) => i.file), sheet });
  else process.stdout.write(`${sheet}\n`);
  return 0;
}
