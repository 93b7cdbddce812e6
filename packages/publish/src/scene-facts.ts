import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { lstat, mkdir, open, realpath } from "node:fs/promises";
import { basename, isAbsolute, join, relative, resolve } from "node:path";
import { sceneEndpoint, type FileImage, type ImageSource, type Manifest } from "@hailuo/manifest";
import {
  journalPath,
  previewRun,
  readJournal,
  sumUsd,
  type RunReport,
  type StoredRecord,
} from "@hailuo/runner";
import { atomicWrite } from "@hailuo/shared";

/** A scene's start or end image as the pages show it. */
export type PageImage =
  /** A copy in the run folder, `images/<sha256>.<ext>`: what the pages show as a thumbnail. */
  | { kind: "file"; file: string; name: string; width: number; height: number }
  /** An https URL passed to fal as it is: shown as a link, never loaded by a page. */
  | { kind: "url"; url: string }
  /** The last frame of the source scene's chosen take, where the runner kept it (`frames/`). */
  | { kind: "frame"; file: string; from: string }
  /** A file that could not be copied (gone, changed since the run checked it): named only. */
  | { kind: "missing"; name: string; why: string };

/** One scene's model, images and place in a chain, as both pages show them. */
export interface SceneFacts {
  id: string;
  /** fal's endpoint id. */
  endpoint: string;
  /** A short label of it: "Hailuo 02 · i2v · 768P" (`modelLabel`). */
  model: string;
  /** The first frame: a file, a URL, or (continuing) the source's last frame once it exists. */
  image?: PageImage;
  /** The last frame (`end_image:`). */
  endImage?: PageImage;
  /** The scene whose last frame this one starts from (`continue_from:`). */
  continueFrom?: string;
  /** The scenes that start from this one's last frame. */
  continuedBy: string[];
}

/** A scene-take a run would make anew because what it continues from changed (another pick). */
export interface StaleTake {
  scene: string;
  take: number;
  /** What making it anew costs, at the prices given (the account's). */
  usd: number;
  /** The take whose last frame it will start from. */
  from?: { scene: string; take: number };
  /** The source scene, made anew first (when it is stale itself). */
  after?: string;
  /** The runner's reason, in words. */
  reason: string;
}

/** What the pages show besides the report: each scene's facts and the takes a pick made stale. */
export interface PageFacts {
  scenes: SceneFacts[];
  stale: StaleTake[];
  /** What making every stale take anew costs. */
  staleUsd: number;
  /** The command that does (`resumeCommand`): nothing is made anew without one. */
  resume: string;
}

/** Options of `pageFacts`. */
export interface PageFactsOptions {
  /** The journal's records when the caller has read them (else read only if a take is stale). */
  records?: StoredRecord[];
  /** The seed's price for the cost of stale takes. @default the last run's, else the list price */
  usdPerSecond?: number;
  /** Other endpoints' unit prices. @default the last run's, else their list prices */
  unitPricesUsd?: Readonly<Record<string, number>>;
  /**
   * How the page's commands name the run: a bucket run's `s3://` address when the page is made in
   * its scratch folder. @default the folder
   */
  address?: string;
}

const KINDS: Record<string, string> = { "text-to-video": "t2v", "image-to-video": "i2v" };
const ENDPOINT_ID = /^fal-ai\/minimax\/hailuo-([\w.-]+)\/(standard|pro)\/([a-z-]+)$/;

/**
 * A short label of a model: "Hailuo 02 · i2v · 768P", "Hailuo 2.3 Fast · i2v · 768P", "Hailuo 02
 * Pro · t2v · 1080P", from fal's endpoint id and the resolution (left out when not given: a seed
 * scene names none). An id outside the family is shown as it is.
 */
export function modelLabel(endpoint: string, resolution?: string): string {
  const m = ENDPOINT_ID.exec(endpoint);
  const kind = m && KINDS[m[3]!];
  if (!m || !kind) return [endpoint, resolution].filter(Boolean).join(" · ");
  const words = m[1]!.split("-").map((w) => w.charAt(0).toUpperCase() + w.slice(1));
  const name = `Hailuo ${words.join(" ")}${m[2] === "pro" ? " Pro" : ""}`;
  return [name, kind, resolution].filter(Boolean).join(" · ");
}

/** "wake#1 will be made anew from gull#2's last frame: $0.27": one stale take, in words. */
export function staleText(s: StaleTake): string {
  const how = s.from
    ? `from ${s.from.scene}#${s.from.take}'s last frame`
    : s.after
      ? `after ${s.after}, which is made anew first`
      : `(${s.reason})`;
  return `${s.scene}#${s.take} will be made anew ${how}: $${s.usd.toFixed(2)}`;
}

/** A path as one shell word, quoted only when it needs it (a command to copy from a page). */
export function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command that makes a folder's stale takes anew, naming the folder as a command typed in the
 * current folder would: relative when under it, else absolute.
 */
export function resumeCommand(runDir: string): string {
  const rel = relative(process.cwd(), runDir);
  const shown = rel === "" ? "." : rel.startsWith("..") || isAbsolute(rel) ? runDir : rel;
  return `hailuo resume ${shellWord(shown)}`;
}

/** The run folder's folder of image copies, each named by its content. */
const IMAGES = "images";
/** MiniMax refuses images of 20 MB and more: a bigger file was never a scene's image. */
const MAX_IMAGE_BYTES = 20 * 1024 * 1024;

/** The image format by its magic bytes (JPG, PNG, WebP: what MiniMax reads), as an extension. */
function sniffExtension(bytes: Uint8Array): "png" | "jpg" | "webp" | undefined {
  const at = (i: number, s: string) =>
    Buffer.from(bytes.subarray(i, i + s.length)).equals(Buffer.from(s, "latin1"));
  if (at(0, "\x89PNG\r\n\x1a\n")) return "png";
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpg";
  if (at(0, "RIFF") && at(8, "WEBP")) return "webp";
  return undefined;
}

/**
 * `images/` of the run folder, made if need be, and refused unless it is a plain folder inside it:
 * a link to elsewhere would have the page build write there.
 */
async function imagesDir(runDir: string): Promise<string> {
  const dir = join(runDir, IMAGES);
  await mkdir(dir, { recursive: true });
  const [info, root, real] = await Promise.all([lstat(dir), realpath(runDir), realpath(dir)]);
  if (!info.isDirectory() || real !== join(root, IMAGES))
    throw new Error(`${IMAGES}/ of the run folder is not a plain folder in it`);
  return dir;
}

/**
 * A copy of a scene's image file in the run folder, named by its content. The path comes from
 * run.json, which is not trusted: the file is copied only when its bytes hash to the SHA-256 the
 * run recorded (so nothing but the image the run checked can land in the folder, whatever path
 * run.json names), it is a regular file under 20 MB, and its magic bytes say JPG, PNG or WebP.
 */
async function copyImage(image: FileImage, dir: () => Promise<string>): Promise<PageImage> {
  const name = basename(image.path);
  const missing = (why: string): PageImage => ({ kind: "missing", name, why });
  if (!/^[0-9a-f]{64}$/.test(image.sha256)) return missing("run.json records no SHA-256 for it");
  const facts = { name, width: image.width, height: image.height };
  let at: string;
  try {
    at = await dir();
  } catch (error) {
    return missing((error as Error).message);
  }
  for (const ext of ["png", "jpg", "webp"]) {
    const file = `${IMAGES}/${image.sha256}.${ext}`;
    const held = await lstat(join(at, `${image.sha256}.${ext}`)).catch(() => undefined);
    if (held?.isFile()) return { kind: "file", file, ...facts };
  }
  // Non-blocking, so a FIFO named in run.json cannot hang the page build.
  const flags = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);
  const handle = await open(image.path, flags).catch(() => undefined);
  if (!handle) return missing("it cannot be read any more");
  let bytes: Buffer;
  try {
    const info = await handle.stat();
    if (!info.isFile() || info.size >= MAX_IMAGE_BYTES) return missing("it is not an image file");
    bytes = await handle.readFile();
  } catch {
    return missing("it cannot be read any more");
  } finally {
    await handle.close();
  }
  if (createHash("sha256").update(bytes).digest("hex") !== image.sha256)
    return missing("it changed since the run checked it");
  const ext = sniffExtension(bytes);
  if (!ext) return missing("it is not a JPG, PNG or WebP");
  try {
    await atomicWrite(join(at, `${image.sha256}.${ext}`), bytes);
  } catch (error) {
    return missing(`it could not be copied into the run folder (${(error as Error).message})`);
  }
  return { kind: "file", file: `${IMAGES}/${image.sha256}.${ext}`, ...facts };
}

/** The seed's and other endpoints' prices of the newest run into the folder, as its journal says. */
function lastRunPrices(records: StoredRecord[]): {
  usdPerSecond?: number;
  unitPricesUsd?: Record<string, number>;
} {
  const run = records.findLast((r) => r.t === "run");
  return run?.t === "run"
    ? { usdPerSecond: run.usdPerSecond, unitPricesUsd: run.unitPricesUsd }
    : {};
}

/**
 * What a run into the folder would make anew because a pick upstream changed (the runner's
 * `previewRun(...).regenerate`), priced at the prices given. Looked up only when the report marks
 * a take stale: a folder without one costs nothing more than its report.
 */
async function staleTakes(
  runDir: string,
  manifest: Manifest,
  report: RunReport,
  options: PageFactsOptions,
): Promise<StaleTake[]> {
  if (!report.items.some((i) => i.stale)) return [];
  const records = options.records ?? (await readJournal(journalPath(runDir))).records;
  const last = lastRunPrices(records);
  const preview = await previewRun(runDir, manifest, {
    usdPerSecond: options.usdPerSecond ?? last.usdPerSecond,
    unitPricesUsd: options.unitPricesUsd ?? last.unitPricesUsd,
  });
  return preview.regenerate.map(({ item, reason }) => ({
    scene: item.sceneId,
    take: item.take,
    usd: item.costUsd,
    ...(item.lastFrame
      ? { from: { scene: item.lastFrame.sceneId, take: item.lastFrame.take } }
      : item.awaits
        ? { after: item.awaits }
        : {}),
    reason,
  }));
}

/**
 * The last frame a continuing scene starts from now: its source's chosen take's, where the runner
 * keeps it (`frames/<clip>-last.png`, made when a continuation is submitted), if it is there.
 */
async function sourceFrame(
  runDir: string,
  source: string,
  report: RunReport | undefined,
): Promise<PageImage | undefined> {
  const chosen = report?.items.find((i) => i.scene === source && i.chosen && i.file);
  if (!chosen?.file) return undefined;
  const file = `frames/${basename(chosen.file).replace(/\.mp4$/i, "")}-last.png`;
  const info = await lstat(join(runDir, file)).catch(() => undefined);
  return info?.isFile() ? { kind: "frame", file, from: `${source}#${chosen.take}` } : undefined;
}

/**
 * Each scene's model, start and end images and chain, and the takes a pick made stale with the
 * cost of making them anew: what the run page and the review page show besides the report.
 * Image files are copied into the run folder's `images/` by content (see `copyImage`), so the
 * pages show them from the folder alone; https images stay links.
 */
export async function pageFacts(
  runDir: string,
  manifest: Manifest,
  report?: RunReport,
  options: PageFactsOptions = {},
): Promise<PageFacts> {
  let dir: Promise<string> | undefined;
  const imagesAt = () => (dir ??= imagesDir(runDir));
  // The same picture named by many scenes is copied once.
  const copies = new Map<string, Promise<PageImage>>();
  const shown = (image: ImageSource | undefined): Promise<PageImage | undefined> | undefined => {
    if (!image) return undefined;
    if (image.kind === "url")
      return Promise.resolve(
        /^https:\/\//i.test(image.url) ? { kind: "url", url: image.url } : undefined,
      );
    if (image.kind === "unread")
      return Promise.resolve({ kind: "missing", name: basename(image.path), why: "never read" });
    let copy = copies.get(image.sha256);
    if (!copy) copies.set(image.sha256, (copy = copyImage(image, imagesAt)));
    return copy;
  };
  const continuedBy = new Map<string, string[]>();
  for (const s of manifest.scenes)
    if (s.continueFrom)
      continuedBy.set(s.continueFrom, [...(continuedBy.get(s.continueFrom) ?? []), s.id]);
  const [scenes, stale] = await Promise.all([
    Promise.all(
      manifest.scenes.map(async (scene): Promise<SceneFacts> => {
        const endpoint = sceneEndpoint(scene);
        const [image, endImage] = await Promise.all([
          scene.continueFrom ? sourceFrame(runDir, scene.continueFrom, report) : shown(scene.image),
          shown(scene.endImage),
        ]);
        return {
          id: scene.id,
          endpoint,
          model: modelLabel(endpoint, scene.resolution),
          ...(image ? { image } : {}),
          ...(endImage ? { endImage } : {}),
          ...(scene.continueFrom ? { continueFrom: scene.continueFrom } : {}),
          continuedBy: continuedBy.get(scene.id) ?? [],
        };
      }),
    ),
    report ? staleTakes(runDir, manifest, report, options) : [],
  ]);
  return {
    scenes,
    stale,
    staleUsd: sumUsd(stale.map((s) => s.usd)),
    resume: options.address
      ? `hailuo resume ${shellWord(options.address)}`
      : resumeCommand(resolve(runDir)),
  };
}
