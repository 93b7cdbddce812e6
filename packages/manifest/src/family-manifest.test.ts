import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeTempDir } from "@hailuo/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ManifestError,
  checkRecordedManifest,
  loadManifest,
  parseManifest,
  takeRequest,
  type Manifest,
  type Scene,
} from "./index.js";
import { greyPng } from "@hailuo/test-utils";
import { problemsOf } from "./test-problems.js";

const SEED = "fal-ai/minimax/hailuo-02/standard/text-to-video";
const I2V_02 = "fal-ai/minimax/hailuo-02/standard/image-to-video";
const T2V_23 = "fal-ai/minimax/hailuo-2.3/standard/text-to-video";

let tmp: { dir: string; cleanup: () => Promise<void> };
const start = greyPng(640, 360, 30);
const end = greyPng(640, 360, 220);

beforeAll(async () => {
  tmp = await makeTempDir("hailuo-manifest-family-");
  await mkdir(join(tmp.dir, "frames"));
  await writeFile(join(tmp.dir, "frames", "start.png"), start);
  await writeFile(join(tmp.dir, "frames", "end.png"), end);
});

afterAll(() => tmp.cleanup());

// The mixed manifest of issue 24, in each format: text-to-video on the seed, a scene that
// continues the previous one, a start and an end frame on Hailuo 02 i2v, Hailuo 2.3 t2v.
const SOURCES = {
  "mixed.yaml": `name: mixed
scenes:
  - id: dawn
    prompt: Harbour at dawn
    duration: 10
  - id: gull
    prompt: A gull takes off from the same post
    continue_from: previous
  - id: boat
    prompt: A boat crosses from start to end
    image: frames/start.png
    end_image: frames/end.png
  - id: night
    prompt: The harbour at night
    model: ${T2V_23}
`,
  "mixed.csv": `id,prompt,duration,model,image,end_image,continue_from
dawn,Harbour at dawn,10,,,,
gull,A gull takes off from the same post,,,,,previous
boat,A boat crosses from start to end,,,frames/start.png,frames/end.png,
night,The harbour at night,,${T2V_23},,,
`,
  "mixed.jsonl": [
    { id: "dawn", prompt: "Harbour at dawn", duration: 10 },
    { id: "gull", prompt: "A gull takes off from the same post", continue_from: "previous" },
    {
      id: "boat",
      prompt: "A boat crosses from start to end",
      image: "frames/start.png",
      end_image: "frames/end.png",
    },
    { id: "night", prompt: "The harbour at night", model: T2V_23 },
  ]
    .map((o) => JSON.stringify(o))
    .join("\n"),
};

async function load(name: keyof typeof SOURCES): Promise<Manifest> {
  const file = join(tmp.dir, name);
  await writeFile(file, SOURCES[name]);
  return loadManifest(file);
}

const withoutSource = ({ source: _, ...scene }: Scene) => scene;

describe("a manifest mixing the family's endpoints", () => {
  it("reads the same scenes from YAML, CSV and JSONL, images read and hashed", async () => {
    const yaml = await load("mixed.yaml");
    const file = (name: string, bytes: Buffer, sha256: string) => ({
      kind: "file",
      path: join(tmp.dir, "frames", name),
      sha256,
      bytes: bytes.length,
      format: "png",
      width: 640,
      height: 360,
    });
    const common = { prompt_optimizer: true, takes: 1, tags: [] };
    expect(yaml.scenes.map(withoutSource)).toEqual([
      { id: "dawn", prompt: "Harbour at dawn", duration: "10", ...common },
      {
        id: "gull",
        prompt: "A gull takes off from the same post",
        duration: "6",
        ...common,
        endpoint: I2V_02,
        resolution: "768P",
        continueFrom: "dawn",
      },
      {
        id: "boat",
        prompt: "A boat crosses from start to end",
        duration: "6",
        ...common,
        endpoint: I2V_02,
        resolution: "768P",
        image: file("start.png", start, expect.stringMatching(/^[0-9a-f]{64}$/) as never),
        endImage: file("end.png", end, expect.stringMatching(/^[0-9a-f]{64}$/) as never),
      },
      {
        id: "night",
        prompt: "The harbour at night",
        duration: "6",
        ...common,
        endpoint: T2V_23,
        resolution: "768P",
      },
    ]);
    const [, , boat] = yaml.scenes;
    expect(boat!.image).not.toEqual(boat!.endImage);
    expect(yaml.scenes.map((s) => s.source.line)).toEqual([3, 6, 9, 13]);
    for (const name of ["mixed.csv", "mixed.jsonl"] as const) {
      const other = await load(name);
      expect(other.scenes.map(withoutSource), name).toEqual(yaml.scenes.map(withoutSource));
      expect(
        other.scenes.map((s) => s.source.line),
        name,
      ).toEqual(name === "mixed.csv" ? [2, 3, 4, 5] : [1, 2, 3, 4]);
    }
  });

  it("gives the runner, per take, what core's submit takes and where each image comes from", async () => {
    const m = await load("mixed.yaml");
    const [dawn, gull, boat, night] = m.scenes.map((s) => takeRequest(s));
    expect(dawn).toEqual({
      input: { endpoint: SEED, prompt: "Harbour at dawn", duration: "10", prompt_optimizer: true },
      images: {},
    });
    expect(gull).toEqual({
      input: {
        endpoint: I2V_02,
        prompt: "A gull takes off from the same post",
        duration: "6",
        resolution: "768P",
        prompt_optimizer: true,
      },
      images: { image_url: { kind: "last-frame", sceneId: "dawn" } },
    });
    // The record's order, after the endpoint.
    expect(Object.keys(gull!.input)).toEqual([
      "endpoint",
      "prompt",
      "duration",
      "resolution",
      "prompt_optimizer",
    ]);
    expect(boat!.images).toEqual({
      image_url: m.scenes[2]!.image,
      end_image_url: m.scenes[2]!.endImage,
    });
    expect(night).toEqual({
      input: {
        endpoint: T2V_23,
        prompt: "The harbour at night",
        duration: "6",
        prompt_optimizer: true,
      },
      images: {},
    });
    // A reroll's own prompt.
    expect(takeRequest(m.scenes[1]!, "Another gull").input.prompt).toBe("Another gull");
  });

  it("refuses to make a request from an image that was never read", () => {
    const m = parseManifest(SOURCES["mixed.yaml"], { file: "mixed.yaml" });
    expect(m.scenes[2]!.image).toMatchObject({ kind: "unread", path: "frames/start.png" });
    expect(() => takeRequest(m.scenes[2]!)).toThrow(ManifestError);
    expect(() => takeRequest(m.scenes[2]!)).toThrow(/image frames\/start.png was never read/);
  });

  it("refuses in CSV and JSONL at the row's line (and the CSV column)", () => {
    expect(
      problemsOf(
        `id,prompt,model,end_image,continue_from\na,one,,,\nb,two,fal-ai/minimax/hailuo-2.3/standard/image-to-video,e.png,a\n`,
        "list.csv",
      ),
    ).toEqual([
      "3:4 scenes[1].end_image: model fal-ai/minimax/hailuo-2.3/standard/image-to-video takes no end_image (an end frame is taken by fal-ai/minimax/hailuo-02/standard/image-to-video, fal-ai/minimax/hailuo-02/pro/image-to-video)",
    ]);
    expect(
      problemsOf(
        `{"id":"a","prompt":"one","continue_from":"b"}\n{"id":"b","prompt":"two","continue_from":"a"}\n`,
        "x.jsonl",
      ),
    ).toEqual([
      "1:- scenes[0].continue_from: continue_from makes a cycle: a → b → a (each continues from the next; a chain must start from a scene with its own first frame)",
    ]);
  });

  it("keeps a CSV column named like a new field as the variable it was, when a prompt uses it", () => {
    const m = parseManifest(`id,prompt,model\na,"A {{model}} on a coast road",Tesla\n`, {
      file: "cars.csv",
    });
    expect(m.scenes[0]).not.toHaveProperty("endpoint");
    expect(m.scenes[0]!.prompt).toBe("A Tesla on a coast road");
    expect(m.warnings).toEqual([
      expect.objectContaining({
        line: 1,
        column: 3,
        field: "model",
        message: expect.stringMatching(/column "model" is used as \{\{model\}\} in prompts/),
      }),
    ]);
  });
});

describe("run.json re-checks of the family's fields", () => {
  it("accepts the mixed manifest as recorded, and names every field tampered with", async () => {
    const m = await load("mixed.yaml");
    const recorded = JSON.parse(JSON.stringify(m)) as Manifest;
    expect(() => checkRecordedManifest(recorded, "run.json")).not.toThrow();

    const bad = JSON.parse(JSON.stringify(m)) as Manifest;
    bad.scenes[0]!.endpoint = "fal-ai/minimax/hailuo-9";
    bad.scenes[1]!.resolution = "1080P";
    bad.scenes[2]!.image = {
      ...(bad.scenes[2]!.image as object),
      sha256: "abc",
      width: 200,
    } as never;
    bad.scenes[2]!.endImage = { kind: "unread", path: "e.png", source: { file: "x" } };
    bad.scenes[3]!.continueFrom = "night";
    const text = JSON.stringify({ manifest: bad }, null, 2);
    let problems: string[] = [];
    try {
      checkRecordedManifest(bad, "run.json", { text, root: ["manifest"] });
    } catch (error) {
      problems = (error as ManifestError).problems.map((p) => `${p.field}: ${p.message}`);
    }
    expect(problems).toEqual([
      'manifest.scenes[0].endpoint: unknown endpoint "fal-ai/minimax/hailuo-9"',
      `manifest.scenes[1].resolution: resolution must be "512P" or "768P", got "1080P" (endpoint ${I2V_02})`,
      'manifest.scenes[2].image.sha256: expected a hex SHA-256, got "abc"',
      "manifest.scenes[2].image: image is 200×360; its short side must be over 300 px",
      'manifest.scenes[2].endImage: image "e.png" was never read and checked (run.json records read images)',
      `manifest.scenes[3].continueFrom: continueFrom unknown field (expected one of prompt, duration, prompt_optimizer); image_url is taken by ${I2V_02}, fal-ai/minimax/hailuo-02/pro/image-to-video, fal-ai/minimax/hailuo-2.3/standard/image-to-video, fal-ai/minimax/hailuo-2.3/pro/image-to-video, fal-ai/minimax/hailuo-2.3-fast/standard/image-to-video (endpoint ${T2V_23})`,
      'manifest.scenes[3].continueFrom: continueFrom "night" is not another scene of this run',
    ]);
  });

  it("refuses a recorded cycle", async () => {
    const m = await load("mixed.yaml");
    const bad = JSON.parse(JSON.stringify(m)) as Manifest;
    bad.scenes[0] = { ...bad.scenes[1]!, id: "dawn", continueFrom: "gull" };
    expect(() => checkRecordedManifest(bad, "run.json")).toThrow(
      /scenes\[0\]\.continueFrom: continueFrom makes a cycle: dawn → gull → dawn/,
    );
  });
});
