import {
  endpointOf,
  normalizeInput,
  type ClipDuration,
  type ClipResolution,
  type EndpointInput,
} from "@hailuo/endpoints";
import { ManifestError } from "./manifest-error.js";
import type { FileImage, Scene, UrlImage } from "./manifest-types.js";
import { sceneEndpoint } from "./scene-endpoint.js";

/**
 * The body core's `submit` takes for one take of a scene (`EndpointInputLike`), less its image
 * URLs: only the fields the endpoint's record lists, in its order, defaults filled in, fixed
 * values (6 s at 1080P) left out. `image_url` / `end_image_url` are filled by the runner from
 * `TakeRequest.images`.
 */
export interface TakeInput {
  /** An endpoint id of `ENDPOINTS` (the seed's for a seed scene). */
  endpoint: string;
  prompt: string;
  /** Only where the endpoint takes a duration. */
  duration?: ClipDuration;
  /** Only where the endpoint takes a resolution (Hailuo 02 standard image-to-video). */
  resolution?: ClipResolution;
  prompt_optimizer: boolean;
}

/** A frame that comes from another scene: the last frame of that scene's chosen take. */
export interface LastFrameImage {
  kind: "last-frame";
  /** The source scene's id (`Scene.continueFrom`). */
  sceneId: string;
}

/**
 * Where an image field's URL comes from: a file to upload (its bytes must still hash to
 * `sha256`), an https URL passed as it is, or another scene's last frame.
 */
export type ImageSlot = FileImage | UrlImage | LastFrameImage;

/** One take's request: its input and, per image field of the endpoint, where the image comes from. */
export interface TakeRequest {
  input: TakeInput;
  /** Keyed by the endpoint's field names; empty for text-to-video. */
  images: { image_url?: ImageSlot; end_image_url?: ImageSlot };
}

// Only for validating through the record: never sent.
const PLACEHOLDER = "https://image.invalid/frame.png";

/**
 * What the runner submits for a take of a validated scene (`prompt`: a reroll's own, by
 * default the scene's). Pure. Throws a ManifestError for an image that was never read (a
 * manifest from `parseManifest` whose files `readSceneImages` has not checked), and the
 * record's InputValidationError for a scene that no longer fits its endpoint.
 */
export function takeRequest(scene: Scene, prompt: string = scene.prompt): TakeRequest {
  const endpoint = sceneEndpoint(scene);
  const record = endpointOf(endpoint);
  const images: TakeRequest["images"] = {};
  const first: ImageSlot | undefined = scene.continueFrom
    ? { kind: "last-frame", sceneId: scene.continueFrom }
    : slot(scene, "image");
  if (first) images.image_url = first;
  const last = slot(scene, "endImage");
  if (last) images.end_image_url = last;
  const body: Record<string, unknown> = {
    prompt,
    duration: scene.duration,
    prompt_optimizer: scene.prompt_optimizer,
  };
  if (scene.resolution) body.resolution = scene.resolution;
  for (const name of Object.keys(images)) body[name] = PLACEHOLDER;
  const normal: Partial<EndpointInput> = normalizeInput(endpoint, body);
  delete normal.image_url;
  delete normal.end_image_url;
  // The record's own order, after the endpoint: what core's submit reads.
  const input = { endpoint } as TakeInput & Record<string, unknown>;
  for (const name of Object.keys(record.fields))
    if ((normal as Record<string, unknown>)[name] !== undefined)
      input[name] = (normal as Record<string, unknown>)[name];
  return { input, images };
}

function slot(scene: Scene, key: "image" | "endImage"): FileImage | UrlImage | undefined {
  const image = scene[key];
  if (image?.kind !== "unread") return image;
  const field = key === "image" ? "image" : "end_image";
  throw new ManifestError(image.source.file, [
    {
      ...image.source,
      field: `${scene.id}.${field}`,
      message: `image ${image.path} was never read: load the manifest with loadManifest (or run readSceneImages on it) before running it`,
    },
  ]);
}
