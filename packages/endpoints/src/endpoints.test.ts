import { describe, expect, it } from "vitest";
import {
  ENDPOINTS,
  HAILUO_ENDPOINT,
  MAX_PROMPT_CHARS,
  PRICE_USD_PER_SECOND,
  SEED_ENDPOINT_ID,
  UnknownEndpointError,
  cacheKeyParts,
  checkHailuoInput,
  checkImageFacts,
  checkInput,
  endpointOf,
  estimateCost,
  IMAGE_RULES,
  normalizeHailuoInput,
  normalizeInput,
  priceOf,
} from "./index.js";

const ID = {
  seed: "fal-ai/minimax/hailuo-02/standard/text-to-video",
  i2v02: "fal-ai/minimax/hailuo-02/standard/image-to-video",
  pro02t: "fal-ai/minimax/hailuo-02/pro/text-to-video",
  pro02i: "fal-ai/minimax/hailuo-02/pro/image-to-video",
  std23t: "fal-ai/minimax/hailuo-2.3/standard/text-to-video",
  std23i: "fal-ai/minimax/hailuo-2.3/standard/image-to-video",
  pro23t: "fal-ai/minimax/hailuo-2.3/pro/text-to-video",
  pro23i: "fal-ai/minimax/hailuo-2.3/pro/image-to-video",
  fast23i: "fal-ai/minimax/hailuo-2.3-fast/standard/image-to-video",
} as const;
const IMG = "https://v3.fal.media/files/a/start.png";
const END = "https://v3.fal.media/files/b/end.png";

describe("the records", () => {
  it("describe the nine endpoints of the issue, the seed first, each id once", () => {
    expect(ENDPOINTS.map((e) => e.id)).toEqual(Object.values(ID));
    expect(SEED_ENDPOINT_ID).toBe(HAILUO_ENDPOINT);
    for (const e of ENDPOINTS) {
      expect(e.kind).toBe(e.id.endsWith("image-to-video") ? "i2v" : "t2v");
      expect("image_url" in e.fields).toBe(e.kind === "i2v");
      expect(e.fields.prompt).toEqual({ type: "prompt", required: true, maxChars: 2000 });
      expect(e.sources.length).toBeGreaterThan(0);
    }
    expect(MAX_PROMPT_CHARS).toBe(2000);
  });

  it("hash every field that changes the clip: the cache key fields are exactly the fields", () => {
    // A field left out here would let two different clips share a key (a wrong paid clip reused).
    for (const e of ENDPOINTS)
      expect([...e.cacheKeyFields].sort()).toEqual(Object.keys(e.fields).sort());
  });

  it("take end_image_url on Hailuo 02 image-to-video only, resolution on Hailuo 02 standard i2v only", () => {
    const taking = (f: string) => ENDPOINTS.filter((e) => f in e.fields).map((e) => e.id);
    expect(taking("end_image_url")).toEqual([ID.i2v02, ID.pro02i]);
    expect(taking("resolution")).toEqual([ID.i2v02]);
    expect(taking("duration")).toEqual([ID.seed, ID.i2v02, ID.std23t, ID.std23i, ID.fast23i]);
  });

  it("an unknown id is a typed, non-retryable error naming the known ones", () => {
    expect(endpointOf(ID.pro23i).id).toBe(ID.pro23i);
    const e = (() => {
      try {
        endpointOf("fal-ai/minimax/hailuo-03/text-to-video");
      } catch (error) {
        return error;
      }
    })();
    expect(e).toBeInstanceOf(UnknownEndpointError);
    expect(e).toMatchObject({ code: "validation", retryable: false });
    expect((e as Error).message).toContain(ID.seed);
    expect(() => checkInput("nope", { prompt: "a" })).toThrow(UnknownEndpointError);
    expect(() => priceOf("nope", {})).toThrow(UnknownEndpointError);
  });
});

describe("checkInput", () => {
  const fields = (id: string, input: unknown) => checkInput(id, input).map((p) => p.field);
  it.each([
    ["seed, defaults", ID.seed, { prompt: "a" }, []],
    ["seed, 10 s as a number", ID.seed, { prompt: "a", duration: 10 }, []],
    ["seed, 768P said though fixed", ID.seed, { prompt: "a", resolution: "768p" }, []],
    ["seed, 512P is i2v only", ID.seed, { prompt: "a", resolution: "512P" }, ["resolution"]],
    ["seed, an image", ID.seed, { prompt: "a", image_url: IMG }, ["image_url"]],
    ["i2v 02, no image", ID.i2v02, { prompt: "a" }, ["image_url"]],
    ["i2v 02, image", ID.i2v02, { prompt: "a", image_url: IMG }, []],
    ["i2v 02, 512P", ID.i2v02, { prompt: "a", image_url: IMG, resolution: "512P" }, []],
    [
      "i2v 02, 1080P",
      ID.i2v02,
      { prompt: "a", image_url: IMG, resolution: "1080P" },
      ["resolution"],
    ],
    ["i2v 02, end image", ID.i2v02, { prompt: "a", image_url: IMG, end_image_url: END }, []],
    [
      "i2v 02, end image at 512P",
      ID.i2v02,
      { prompt: "a", image_url: IMG, end_image_url: END, resolution: "512P" },
      ["resolution"],
    ],
    ["i2v 02, a path is no URL", ID.i2v02, { prompt: "a", image_url: "./a.png" }, ["image_url"]],
    [
      "i2v 02, a data URI",
      ID.i2v02,
      { prompt: "a", image_url: "data:image/png;base64,iVBORw0KGgo=" },
      [],
    ],
    ["pro 02 t2v, 6 s said", ID.pro02t, { prompt: "a", duration: 6 }, []],
    ["pro 02 t2v, 10 s at 1080P", ID.pro02t, { prompt: "a", duration: "10" }, ["duration"]],
    ["pro 02 i2v, end image", ID.pro02i, { prompt: "a", image_url: IMG, end_image_url: END }, []],
    ["2.3 t2v, 10 s", ID.std23t, { prompt: "a", duration: "10" }, []],
    [
      "2.3 i2v, end image",
      ID.std23i,
      { prompt: "a", image_url: IMG, end_image_url: END },
      ["end_image_url"],
    ],
    [
      "2.3 pro i2v, end image",
      ID.pro23i,
      { prompt: "a", image_url: IMG, end_image_url: END },
      ["end_image_url"],
    ],
    ["2.3 pro t2v, 10 s", ID.pro23t, { prompt: "a", duration: 10 }, ["duration"]],
    ["2.3 fast i2v, 10 s", ID.fast23i, { prompt: "a", image_url: IMG, duration: 10 }, []],
    [
      "2.3 fast i2v, resolution",
      ID.fast23i,
      { prompt: "a", image_url: IMG, resolution: "512P" },
      ["resolution"],
    ],
  ])("%s", (_name, id, input, expected) => {
    expect(fields(id, input)).toEqual(expected);
  });

  it("says why, naming the endpoints that do take a field", () => {
    const [endOn23] = checkInput(ID.std23i, { prompt: "a", image_url: IMG, end_image_url: END });
    expect(endOn23!.message).toContain(`end_image_url is taken by ${ID.i2v02}, ${ID.pro02i}`);
    const [tenAt1080] = checkInput(ID.pro02t, { prompt: "a", duration: 10 });
    expect(tenAt1080!.message).toBe(
      "this endpoint renders 6 s only and takes no duration, got 10 (1080P renders 6 s only)",
    );
    const [res] = checkInput(ID.seed, { prompt: "a", resolution: "512P" });
    expect(res!.message).toContain("512P is for image-to-video only");
  });

  it("normalises to the body fal takes: the record's fields in order, defaults, fixed fields left out", () => {
    expect(
      normalizeInput(ID.i2v02, { prompt: "a", image_url: ` ${IMG}`, resolution: "512p" }),
    ).toEqual({
      prompt: "a",
      image_url: IMG,
      duration: "6",
      resolution: "512P",
      prompt_optimizer: true,
    });
    expect(Object.keys(normalizeInput(ID.pro23t, { prompt: "a", duration: 6 }))).toEqual([
      "prompt",
      "prompt_optimizer",
    ]);
    expect(() => normalizeInput(ID.i2v02, { prompt: "a" })).toThrow(/image_url/);
  });

  it("the seed's own checks are unchanged: resolution stays an unknown field there", () => {
    expect(checkHailuoInput({ prompt: "a", resolution: "768P" }).map((p) => p.field)).toEqual([
      "resolution",
    ]);
    expect(checkHailuoInput({ prompt: "a", duration: "7" })).toEqual([
      { field: "duration", message: 'must be "6" or "10" (seconds), got "7"' },
    ]);
    expect(checkHailuoInput({ prompt: "", duration: 6 })).toEqual([
      { field: "prompt", message: "must not be empty" },
    ]);
    expect(checkHailuoInput(null)).toEqual([
      { field: "", message: "expected an object with a prompt" },
    ]);
    expect(normalizeHailuoInput({ prompt: "a", duration: " 10 " })).toEqual(
      normalizeInput(ID.seed, { prompt: "a", duration: 10 }),
    );
  });
});

describe("priceOf", () => {
  it.each([
    [ID.seed, {}, 6, 0.27],
    [ID.seed, { duration: 10 }, 10, 0.45],
    [ID.i2v02, { duration: "6" }, 6, 0.27],
    [ID.i2v02, { resolution: "512P" }, 6, 0.102],
    [ID.i2v02, { resolution: "512P", duration: "10" }, 10, 0.17],
    [ID.pro02t, {}, 6, 0.48],
    [ID.pro02i, {}, 6, 0.48],
    [ID.std23t, {}, 6, 0.28],
    [ID.std23t, { duration: "10" }, 10, 0.56],
    [ID.std23i, { duration: 10 }, 10, 0.56],
    [ID.pro23t, {}, 6, 0.49],
    [ID.pro23i, { duration: "6" }, 6, 0.49],
    [ID.fast23i, {}, 6, 0.19],
    [ID.fast23i, { duration: "10" }, 10, 0.32],
  ])("%s %j: %d s, $%d at fal's list price", (id, input, seconds, usd) => {
    expect(priceOf(id, input)).toMatchObject({ seconds, usd });
  });

  it("an account's unit price scales the record's table, and the seed's stays seconds × price", () => {
    expect(priceOf(ID.seed, { duration: "10" }, { unitPriceUsd: 0.05 })).toEqual({
      seconds: 10,
      usd: 0.5,
      unit: "second",
      unitPriceUsd: 0.05,
    });
    expect(priceOf(ID.i2v02, { resolution: "512P" }, { unitPriceUsd: 0.09 }).usd).toBe(0.204);
    expect(priceOf(ID.std23t, { duration: "10" }, { unitPriceUsd: 0.14 })).toMatchObject({
      usd: 0.28,
      unit: "video",
    });
    // The seed's legacy estimate agrees with the record at any price.
    for (const price of [0.045, 0.05, 0.0451234567])
      for (const duration of ["6", "10"] as const)
        expect(priceOf(ID.seed, { duration }, { unitPriceUsd: price }).usd).toBe(
          estimateCost({ duration }, price).usd,
        );
    expect(PRICE_USD_PER_SECOND["768p"]).toBe(0.045);
  });

  it("refuses a length or resolution the endpoint does not render", () => {
    expect(() => priceOf(ID.pro23t, { duration: "10" })).toThrow(/no price for duration "10"/);
    expect(() => priceOf(ID.seed, { resolution: "512P" })).toThrow(/resolution/);
  });
});

describe("cache keys", () => {
  it("the seed's parts are what the runner has always hashed; others start with their id", () => {
    const seed = normalizeHailuoInput({ prompt: "a", duration: 10 });
    expect(cacheKeyParts(ID.seed, seed)).toEqual(["a", "10", true]);
    const body = normalizeInput(ID.i2v02, { prompt: "a", image_url: IMG, end_image_url: END });
    const hash = (url: string) => (url === IMG ? "h-start" : "h-end");
    expect(cacheKeyParts(ID.i2v02, body, hash)).toEqual([
      ID.i2v02,
      "a",
      "h-start",
      "h-end",
      "6",
      "768P",
      true,
    ]);
    const noEnd = normalizeInput(ID.i2v02, { prompt: "a", image_url: IMG });
    expect(cacheKeyParts(ID.i2v02, noEnd, hash)).toContain(null);
    // Same prompt and length on two endpoints: two keys.
    expect(
      cacheKeyParts(ID.std23t, normalizeInput(ID.std23t, { prompt: "a", duration: 10 })),
    ).not.toEqual(cacheKeyParts(ID.seed, seed));
  });
});

describe("checkImageFacts", () => {
  it.each([
    [{ format: "png", bytes: 1000, width: 1280, height: 720 }, 0],
    [{ format: "gif", bytes: 1000, width: 1280, height: 720 }, 1],
    [{ format: "jpeg", bytes: 20 * 1024 * 1024, width: 1280, height: 720 }, 1],
    [{ format: "webp", bytes: 1000, width: 300, height: 600 }, 1],
    [{ format: "png", bytes: 1000, width: 1500, height: 500 }, 1],
    [{ format: "png", bytes: 1000, width: 400, height: 1000 }, 0],
  ])("%j: %d problems", (facts, n) => {
    expect(checkImageFacts(facts, IMAGE_RULES)).toHaveLength(n);
  });
});
