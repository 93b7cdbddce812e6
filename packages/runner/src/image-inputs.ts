import { createHash } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import {
  IMAGE_RULES,
  checkImageFacts,
  readImageFacts,
  uploadFile,
  type HailuoClient,
} from "@hailuo/core";
import type { ImageSlot } from "@hailuo/manifest";
import { extractLastFrame } from "@hailuo/media";
import { HailuoError } from "@hailuo/shared";
import type { RunStore } from "@hailuo/store";
import { clipIntact, insideDir } from "./clip-file.js";
import { JournalStore, readJournal } from "./journal-store.js";
import type { PlanItem } from "./plan.js";
import { uploadsOf, type JournaledUpload } from "./run-state.js";

/**
 * A scene's image file is not the one the manifest checked (changed, moved or unreadable since),
 * so its clip's key no longer names it: the scene is refused, nothing is submitted for it.
 */
export class ImageChangedError extends HailuoError {
  constructor(message: string) {
    super("manifest", message, { retryable: false });
  }
}

/** The image URLs of one submit, by field. */
export type ImageUrls = Partial<Record<"image_url" | "end_image_url", string>>;

/** Where a generation's images come from as URLs fal can read. */
export interface ImageInputs {
  /**
   * The URLs of `item`'s images: an https URL as given; a file (its bytes checked against the
   * manifest's SHA-256) and a source clip's last frame uploaded, or found uploaded already.
   */
  urlsFor(item: PlanItem, signal: AbortSignal): Promise<ImageUrls>;
}

/** Options of `createImageInputs`. */
export interface ImageInputsOptions {
  client: Pick<HailuoClient, "upload">;
  /** Where each upload is journaled (by content) before its URL is used. */
  journal: Pick<JournalStore, "append">;
  /** The run: source clips are read, and last frames kept, in its folder (`frames/`). */
  store: RunStore;
  /** What the journal says was uploaded (`uploadsOf`); extended as this run uploads. */
  uploads: Map<string, JournaledUpload>;
  /** Told of each upload made (not of one found in the journal). */
  onUpload?: (item: PlanItem, field: string, file: JournaledUpload) => void;
}

const ROLE: Record<string, string> = { image_url: "start image", end_image_url: "end image" };

const sha256Of = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/**
 * The run's image inputs. Each picture is uploaded once per run folder: its upload is journaled
 * by content (`uploaded`) before its URL is used, so a resume, or another scene with the same
 * picture, reuses the URL instead of uploading the bytes again. fal keeps uploaded inputs under
 * the account's media retention, like its outputs
 * (https://docs.fal.ai/documentation/model-apis/media-expiration).
 */
export function createImageInputs(o: ImageInputsOptions): ImageInputs {
  const runDir = o.store.dir;
  // Two generations needing the same picture at once share one upload.
  const inFlight = new Map<string, Promise<string>>();

  const urlOf = (
    item: PlanItem,
    field: string,
    content: { bytes: Buffer; sha256: string; name: string },
    signal: AbortSignal,
  ): Promise<string> => {
    const known = o.uploads.get(content.sha256);
    if (known) return Promise.resolve(known.url);
    let pending = inFlight.get(content.sha256);
    if (!pending) {
      pending = (async () => {
        const up = await uploadFile(o.client, content.bytes, { fileName: content.name, signal });
        const file = { sha256: content.sha256, url: up.url, bytes: up.bytes };
        await o.journal.append({ t: "uploaded", ...file, scene: item.sceneId, field });
        o.uploads.set(content.sha256, file);
        o.onUpload?.(item, field, file);
        return up.url;
      })().finally(() => inFlight.delete(content.sha256));
      inFlight.set(content.sha256, pending);
    }
    return pending;
  };

  const fileContent = async (item: PlanItem, field: string, slot: ImageSlot & { kind: "file" }) => {
    const role = ROLE[field] ?? field;
    const bytes = await readFile(slot.path).catch((error: NodeJS.ErrnoException) => {
      throw new ImageChangedError(
        `scene ${item.sceneId}: cannot read its ${role} ${slot.path} (${error.code ?? error.message}); nothing was submitted for it`,
      );
    });
    const sha256 = sha256Of(bytes);
    if (sha256 !== slot.sha256)
      throw new ImageChangedError(
        `scene ${item.sceneId}: its ${role} ${slot.path} changed since the manifest was checked (SHA-256 ${slot.sha256.slice(0, 12)}…, now ${sha256.slice(0, 12)}…); nothing was submitted for it. Run the manifest again to check the new image (its clip gets a new key)`,
      );
    return { bytes, sha256, name: basename(slot.path) };
  };

  const frameContent = async (item: PlanItem, signal: AbortSignal) => {
    const source = item.lastFrame;
    if (!source)
      throw new HailuoError(
        "internal",
        `scene ${item.sceneId}: its source scene has no chosen clip to continue from yet`,
      );
    const label = `${source.sceneId}#${source.take}`;
    // The key names the source clip's bytes: a clip changed on disk would start another picture.
    // A bucket run's source clip is brought into its scratch folder (checked) to read its frame.
    if (o.store.kind !== "local") await o.store.getArtifact(source.clip.file);
    if (!(await clipIntact(runDir, source.clip)))
      throw new HailuoError(
        "clip_changed",
        `scene ${item.sceneId} continues from ${label}, whose clip ${source.clip.file} is missing or changed; run again to download it (never paid twice), then this scene is submitted`,
        { retryable: false },
      );
    const stem = basename(source.clip.file).replace(/\.mp4$/i, "");
    await mkdir(join(runDir, "frames"), { recursive: true });
    // fal's clips are 512 px high or more; a smaller one (an emulator's thumbnail render) is
    // scaled up to what MiniMax reads rather than refused by it after the submit.
    const frame = await extractLastFrame(
      insideDir(runDir, source.clip.file),
      insideDir(runDir, `frames/${stem}-last.png`),
      { signal, minShortSidePx: IMAGE_RULES.minShortSidePx },
    );
    const facts = readImageFacts(frame.bytes);
    const problems = facts ? checkImageFacts(facts, IMAGE_RULES) : ["is no PNG ffmpeg wrote"];
    if (problems.length)
      throw new HailuoError(
        "validation",
        `scene ${item.sceneId}: the last frame of ${label} ${problems.join("; ")}, so MiniMax would refuse it; nothing was submitted for it`,
        { retryable: false },
      );
    return { bytes: frame.bytes, sha256: frame.sha256, name: `${stem}-last.png` };
  };

  return {
    async urlsFor(item, signal) {
      const urls: ImageUrls = {};
      for (const [field, slot] of Object.entries(item.images) as [keyof ImageUrls, ImageSlot][]) {
        if (slot.kind === "url") {
          urls[field] = slot.url;
          continue;
        }
        // A file uploaded already (by this run, or when a distributed run was enqueued) is known
        // by the SHA-256 the manifest checked: its URL, with no need for the file on this machine.
        const uploaded = slot.kind === "file" ? o.uploads.get(slot.sha256) : undefined;
        if (uploaded) {
          urls[field] = uploaded.url;
          continue;
        }
        const content =
          slot.kind === "file"
            ? await fileContent(item, field, slot)
            : await frameContent(item, signal);
        urls[field] = await urlOf(item, field, content, signal);
      }
      return urls;
    },
  };
}

/**
 * Uploads the image files a run's generations read (each picture once, found uploaded already
 * when the journal says so) and journals each upload by content before returning: a distributed
 * run's workers, which may not have the files, submit with those URLs. Returns how many pictures
 * were uploaded now.
 */
export async function uploadRunImages(o: {
  client: Pick<HailuoClient, "upload">;
  store: RunStore;
  items: readonly PlanItem[];
  signal?: AbortSignal;
}): Promise<number> {
  const { records } = await readJournal(o.store);
  const uploads = uploadsOf(records);
  const before = uploads.size;
  const journal = await JournalStore.on(o.store);
  try {
    const inputs = createImageInputs({ client: o.client, journal, store: o.store, uploads });
    const signal = o.signal ?? new AbortController().signal;
    for (const item of o.items) {
      const images = fileSlots(item);
      if (Object.keys(images).length) await inputs.urlsFor({ ...item, images }, signal);
    }
  } finally {
    await journal.close();
  }
  return uploads.size - before;
}

/** An item's file images only (a source's last frame is made where the run goes on). */
function fileSlots(item: PlanItem): PlanItem["images"] {
  return Object.fromEntries(
    Object.entries(item.images).filter(([, slot]) => slot.kind === "file"),
  ) as PlanItem["images"];
}
