import { HailuoError } from "@hailuo/shared";

/**
 * The MiniMax Hailuo family on fal as data: one record per endpoint. Everything else (input
 * checks, prices, cache keys, the emulator's routes) reads these records, so adding an endpoint
 * is a record and its tests, never a name spelled out in another package.
 *
 * Input fields are those of fal-js `libs/client/src/types/endpoints.ts` at 381105e (the
 * `Minimax*Input` types); prices and limits are cited beside each record.
 */

/** Text-to-video or image-to-video. */
export type EndpointKind = "t2v" | "i2v";
/** A clip length in seconds, as fal's string enum. */
export type ClipDuration = "6" | "10";
/** Output resolutions of the family, as fal spells them. */
export type ClipResolution = "512P" | "768P" | "1080P";

/** MiniMax's rules for a start or end image (checked on the file by `checkImageFacts`). */
export interface ImageRules {
  /** File formats MiniMax reads. */
  formats: readonly ("jpeg" | "png" | "webp")[];
  /** Files must be smaller than this. */
  maxBytes: number;
  /** The shorter side must be at least this many pixels ("over 300 px"). */
  minShortSidePx: number;
  /** Width ÷ height must lie within [min, max] (2:5 to 5:2). */
  aspect: { min: number; max: number };
}

/**
 * MiniMax's image rules: JPG/PNG/WebP, under 20 MB, short side over 300 px, aspect between 2:5
 * and 5:2 (MiniMax video_generation API, first_frame_image / last_frame_image, as mirrored in
 * docs.fast-token.com/en/minimax/video/MiniMaxFirstLastFrameVideoGeneration).
 */
export const IMAGE_RULES: ImageRules = {
  formats: ["jpeg", "png", "webp"],
  maxBytes: 20 * 1024 * 1024,
  minShortSidePx: 301,
  aspect: { min: 2 / 5, max: 5 / 2 },
};

/** One input field of an endpoint. */
export type FieldSpec =
  | { type: "prompt"; required: true; maxChars: number }
  | { type: "boolean"; default: boolean }
  | {
      type: "enum";
      values: readonly string[];
      default: string;
      /** Said after the values in messages, e.g. `(seconds)`. */
      unit?: string;
      /** Numbers (`6`) and other spellings (`768p`) are read as the value they name. */
      lenient: true;
    }
  | { type: "image"; required: boolean; rules: ImageRules; role: "first frame" | "last frame" };

/** A condition on an input with defaults and fixed values filled in (see `effectiveParams`). */
export type Condition =
  | { field: string; in: readonly string[] }
  | { field: string; present: boolean }
  | { kind: EndpointKind };

/** A rule between fields: when `when` holds, `require` must hold too, or `field` is refused. */
export interface CrossFieldRule {
  when: Condition;
  require: Condition;
  /** The field blamed in the problem. */
  field: string;
  message: string;
  /** Where the rule comes from. */
  source: string;
}

/**
 * How fal prices an endpoint. `second`: per generated second (optionally another rate per
 * resolution); `video`: per clip (optionally another price per duration). The base price is
 * what fal's pricing API quotes as `unit_price`.
 */
export type PriceRule =
  | {
      unit: "second";
      usdPerSecond: number;
      byResolution?: Partial<Record<ClipResolution, number>>;
    }
  | { unit: "video"; usdPerVideo: number; byDuration?: Partial<Record<ClipDuration, number>> };

/** One fal endpoint of the family. */
export interface EndpointRecord {
  id: string;
  /** Model generation and tier, for labels. */
  model: "hailuo-02" | "hailuo-2.3" | "hailuo-2.3-fast";
  tier: "standard" | "pro";
  kind: EndpointKind;
  /** The body fal takes, in the order it is sent. */
  fields: Readonly<Record<string, FieldSpec>>;
  /**
   * What the endpoint renders without being asked (it takes no such field): a 1080P endpoint
   * renders 6 s only and takes no duration. An input naming one of these with another value is
   * refused; with the same value it is accepted and left out of the body.
   */
  fixed: Readonly<Partial<Record<"duration" | "resolution", string>>>;
  rules: readonly CrossFieldRule[];
  /**
   * The fields that make the cache key, in order; an image field stands for its content hash.
   * Every field that changes the clip is here (a test holds it), so a new field cannot reuse a
   * wrong paid clip.
   */
  cacheKeyFields: readonly string[];
  price: PriceRule;
  /** Where the fields and the price were read. */
  sources: readonly string[];
}

const PROMPT: FieldSpec = { type: "prompt", required: true, maxChars: 2000 };
const OPTIMIZER: FieldSpec = { type: "boolean", default: true };
const DURATION: FieldSpec = {
  type: "enum",
  values: ["6", "10"],
  default: "6",
  unit: "seconds",
  lenient: true,
};
const IMAGE: FieldSpec = { type: "image", required: true, rules: IMAGE_RULES, role: "first frame" };
const END_IMAGE: FieldSpec = {
  type: "image",
  required: false,
  rules: IMAGE_RULES,
  role: "last frame",
};
const FAL_JS = "fal-js libs/client/src/types/endpoints.ts@381105e";
const page = (id: string) => `https://fal.ai/models/${id}/llms.txt (Pricing)`;

/** The seed: Hailuo 02 Standard text-to-video, $0.045/s at 768P (fal model page). */
const HAILUO_02_STANDARD_T2V: EndpointRecord = {
  id: "fal-ai/minimax/hailuo-02/standard/text-to-video",
  model: "hailuo-02",
  tier: "standard",
  kind: "t2v",
  fields: { prompt: PROMPT, duration: DURATION, prompt_optimizer: OPTIMIZER },
  fixed: { resolution: "768P" },
  rules: [],
  // The order the runner has always hashed, so every seed clip keeps its key.
  cacheKeyFields: ["prompt", "duration", "prompt_optimizer"],
  price: { unit: "second", usdPerSecond: 0.045 },
  sources: [
    `${FAL_JS} (StandardTextToVideoHailuo02Input)`,
    page("fal-ai/minimax/hailuo-02/standard/text-to-video"),
  ],
};

/** Every record of the family, the seed first. */
export const ENDPOINTS: readonly EndpointRecord[] = [
  HAILUO_02_STANDARD_T2V,
  {
    // "$0.045/sec at 768P ... roughly $0.017/sec at 512P" (fal model page).
    id: "fal-ai/minimax/hailuo-02/standard/image-to-video",
    model: "hailuo-02",
    tier: "standard",
    kind: "i2v",
    fields: {
      prompt: PROMPT,
      image_url: IMAGE,
      end_image_url: END_IMAGE,
      duration: DURATION,
      resolution: { type: "enum", values: ["512P", "768P"], default: "768P", lenient: true },
      prompt_optimizer: OPTIMIZER,
    },
    fixed: {},
    rules: [
      {
        when: { field: "end_image_url", present: true },
        require: { field: "resolution", in: ["768P"] },
        field: "resolution",
        message: "a start and an end image need 768P (MiniMax renders first-to-last frame at 768P)",
        source:
          "MiniMax video_generation, first/last frame: MiniMax-Hailuo-02 only, not at 512P " +
          "(docs.fast-token.com/en/minimax/video/MiniMaxFirstLastFrameVideoGeneration)",
      },
    ],
    cacheKeyFields: [
      "prompt",
      "image_url",
      "end_image_url",
      "duration",
      "resolution",
      "prompt_optimizer",
    ],
    price: { unit: "second", usdPerSecond: 0.045, byResolution: { "512P": 0.017 } },
    sources: [
      `${FAL_JS} (StandardImageToVideoHailuo02Input)`,
      page("fal-ai/minimax/hailuo-02/standard/image-to-video"),
    ],
  },
  {
    // "$0.08/sec. A single 6 second video will cost $0.48" (fal model page, pro/text-to-video).
    id: "fal-ai/minimax/hailuo-02/pro/text-to-video",
    model: "hailuo-02",
    tier: "pro",
    kind: "t2v",
    fields: { prompt: PROMPT, prompt_optimizer: OPTIMIZER },
    fixed: { duration: "6", resolution: "1080P" },
    rules: [],
    cacheKeyFields: ["prompt", "prompt_optimizer"],
    price: { unit: "second", usdPerSecond: 0.08 },
    sources: [
      `${FAL_JS} (MinimaxHailuo02ProTextToVideoInput = MinimaxVideo01Input)`,
      "https://fal.ai/models/fal-ai/minimax/hailuo-02/pro/text-to-video (Pricing)",
    ],
  },
  {
    // "$0.08/sec. A single 6 second video will cost $0.48" (fal model page, pro/image-to-video).
    id: "fal-ai/minimax/hailuo-02/pro/image-to-video",
    model: "hailuo-02",
    tier: "pro",
    kind: "i2v",
    fields: {
      prompt: PROMPT,
      image_url: IMAGE,
      end_image_url: END_IMAGE,
      prompt_optimizer: OPTIMIZER,
    },
    fixed: { duration: "6", resolution: "1080P" },
    rules: [],
    cacheKeyFields: ["prompt", "image_url", "end_image_url", "prompt_optimizer"],
    price: { unit: "second", usdPerSecond: 0.08 },
    sources: [
      `${FAL_JS} (ProImageToVideoHailuo02Input)`,
      page("fal-ai/minimax/hailuo-02/pro/image-to-video"),
    ],
  },
  {
    // "$0.28 per 6 second video generation, and a $0.56 per 10 second" (fal model page).
    id: "fal-ai/minimax/hailuo-2.3/standard/text-to-video",
    model: "hailuo-2.3",
    tier: "standard",
    kind: "t2v",
    fields: { prompt: PROMPT, duration: DURATION, prompt_optimizer: OPTIMIZER },
    fixed: { resolution: "768P" },
    rules: [],
    cacheKeyFields: ["prompt", "duration", "prompt_optimizer"],
    price: { unit: "video", usdPerVideo: 0.28, byDuration: { "10": 0.56 } },
    sources: [
      `${FAL_JS} (StandardTextToVideoHailuo23Input)`,
      page("fal-ai/minimax/hailuo-2.3/standard/text-to-video"),
    ],
  },
  {
    // "$0.28 per 6 second video generation, and a $0.56 per 10 second" (fal model page).
    id: "fal-ai/minimax/hailuo-2.3/standard/image-to-video",
    model: "hailuo-2.3",
    tier: "standard",
    kind: "i2v",
    fields: { prompt: PROMPT, image_url: IMAGE, duration: DURATION, prompt_optimizer: OPTIMIZER },
    fixed: { resolution: "768P" },
    rules: [],
    cacheKeyFields: ["prompt", "image_url", "duration", "prompt_optimizer"],
    price: { unit: "video", usdPerVideo: 0.28, byDuration: { "10": 0.56 } },
    sources: [
      `${FAL_JS} (StandardImageToVideoHailuo23Input)`,
      page("fal-ai/minimax/hailuo-2.3/standard/image-to-video"),
    ],
  },
  {
    // "$0.49 per video generation" (fal model page); 1080P renders 6 s only.
    id: "fal-ai/minimax/hailuo-2.3/pro/text-to-video",
    model: "hailuo-2.3",
    tier: "pro",
    kind: "t2v",
    fields: { prompt: PROMPT, prompt_optimizer: OPTIMIZER },
    fixed: { duration: "6", resolution: "1080P" },
    rules: [],
    cacheKeyFields: ["prompt", "prompt_optimizer"],
    price: { unit: "video", usdPerVideo: 0.49 },
    sources: [
      `${FAL_JS} (ProTextToVideoHailuo23Input)`,
      page("fal-ai/minimax/hailuo-2.3/pro/text-to-video"),
    ],
  },
  {
    // "$0.49 per video generation" (fal model page); 1080P renders 6 s only.
    id: "fal-ai/minimax/hailuo-2.3/pro/image-to-video",
    model: "hailuo-2.3",
    tier: "pro",
    kind: "i2v",
    fields: { prompt: PROMPT, image_url: IMAGE, prompt_optimizer: OPTIMIZER },
    fixed: { duration: "6", resolution: "1080P" },
    rules: [],
    cacheKeyFields: ["prompt", "image_url", "prompt_optimizer"],
    price: { unit: "video", usdPerVideo: 0.49 },
    sources: [
      `${FAL_JS} (ProImageToVideoHailuo23Input)`,
      page("fal-ai/minimax/hailuo-2.3/pro/image-to-video"),
    ],
  },
  {
    // "$0.19 per 6 second video generation, and a $0.32 per 10 second" (fal model page).
    id: "fal-ai/minimax/hailuo-2.3-fast/standard/image-to-video",
    model: "hailuo-2.3-fast",
    tier: "standard",
    kind: "i2v",
    fields: { prompt: PROMPT, image_url: IMAGE, duration: DURATION, prompt_optimizer: OPTIMIZER },
    fixed: { resolution: "768P" },
    rules: [],
    cacheKeyFields: ["prompt", "image_url", "duration", "prompt_optimizer"],
    price: { unit: "video", usdPerVideo: 0.19, byDuration: { "10": 0.32 } },
    sources: [
      `${FAL_JS} (MinimaxHailuo23FastStandardImageToVideoInput)`,
      page("fal-ai/minimax/hailuo-2.3-fast/standard/image-to-video"),
    ],
  },
];

/**
 * Rules of the whole family, checked on every record's effective values (so a future record
 * that offers 1080P next to a duration is held to them without a word in its own rules).
 */
export const FAMILY_RULES: readonly CrossFieldRule[] = [
  {
    when: { field: "resolution", in: ["1080P"] },
    require: { field: "duration", in: ["6"] },
    field: "duration",
    message: "1080P renders 6 s only",
    source: `${FAL_JS}: "10 seconds videos are not supported for 1080p resolution"`,
  },
  {
    when: { field: "resolution", in: ["512P"] },
    require: { kind: "i2v" },
    field: "resolution",
    message: "512P is for image-to-video only",
    source: `${FAL_JS}: only StandardImageToVideoHailuo02Input offers "512P"`,
  },
];

/** The seed endpoint's id: what every caller gets when it names none. */
export const SEED_ENDPOINT_ID = HAILUO_02_STANDARD_T2V.id;
/** The seed's record. */
export const SEED_ENDPOINT: EndpointRecord = HAILUO_02_STANDARD_T2V;

/** An endpoint id that no record describes. Never retryable: the same id fails every time. */
export class UnknownEndpointError extends HailuoError {
  readonly endpointId: string;
  constructor(endpointId: string) {
    super(
      "validation",
      `unknown endpoint ${JSON.stringify(endpointId)} (known: ${ENDPOINTS.map((e) => e.id).join(", ")})`,
      { retryable: false, details: { endpointId, known: ENDPOINTS.map((e) => e.id) } },
    );
    this.endpointId = endpointId;
  }
}

const BY_ID = new Map(ENDPOINTS.map((e) => [e.id, e]));

/** The record of an endpoint id, or undefined. */
export function findEndpoint(id: string): EndpointRecord | undefined {
  return BY_ID.get(id);
}

/** The record of an endpoint id; throws `UnknownEndpointError` for an id no record describes. */
export function endpointOf(id: string): EndpointRecord {
  const record = BY_ID.get(id);
  if (!record) throw new UnknownEndpointError(id);
  return record;
}
