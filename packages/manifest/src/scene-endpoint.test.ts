import { ENDPOINTS } from "@hailuo/endpoints";
import { describe, expect, it } from "vitest";
import { parseManifest } from "./index.js";
import { problemsOf } from "./test-problems.js";

const T2V_02 = "fal-ai/minimax/hailuo-02/standard/text-to-video";
const I2V_02 = "fal-ai/minimax/hailuo-02/standard/image-to-video";
const PRO_T2V_02 = "fal-ai/minimax/hailuo-02/pro/text-to-video";
const PRO_I2V_02 = "fal-ai/minimax/hailuo-02/pro/image-to-video";
const T2V_23 = "fal-ai/minimax/hailuo-2.3/standard/text-to-video";
const I2V_23 = "fal-ai/minimax/hailuo-2.3/standard/image-to-video";
const PRO_T2V_23 = "fal-ai/minimax/hailuo-2.3/pro/text-to-video";
const PRO_I2V_23 = "fal-ai/minimax/hailuo-2.3/pro/image-to-video";
const FAST_I2V_23 = "fal-ai/minimax/hailuo-2.3-fast/standard/image-to-video";
const KNOWN = `(known: ${ENDPOINTS.map((e) => e.id).join(", ")})`;

/** Scenes written one to a line: `key: value` pairs after `- `. */
const yaml = (...scenes: string[][]) =>
  `scenes:\n${scenes.map((s) => s.map((l, i) => `${i ? "   " : "  -"} ${l}\n`).join("")).join("")}`;

// Every refusal is made before anything is paid, with file:line:column and the field.
describe("a scene's model, resolution, images and continue_from: refusals", () => {
  const cases: [string, string, string[]][] = [
    [
      "an unknown model, listing the known ones",
      yaml(["prompt: a", "model: fal-ai/minimax/hailuo-03/standard/text-to-video"]),
      [
        `3:12 scenes[0].model: unknown model "fal-ai/minimax/hailuo-03/standard/text-to-video"; did you mean "${T2V_02}"? ${KNOWN}`,
      ],
    ],
    [
      "an unknown default model, once and not once per scene",
      `defaults:\n  model: hailuo\n${yaml(["prompt: a"], ["prompt: b", "image: b.png"])}`,
      [`2:10 defaults.model: unknown model "hailuo" ${KNOWN}`],
    ],
    [
      "end_image on Hailuo 2.3, which takes no end frame",
      yaml(["prompt: a", `model: ${I2V_23}`, "image: a.png", "end_image: b.png"]),
      [
        `5:16 scenes[0].end_image: model ${I2V_23} takes no end_image (an end frame is taken by ${I2V_02}, ${PRO_I2V_02})`,
      ],
    ],
    [
      "10 s at 1080P",
      yaml(["prompt: a", `model: ${PRO_T2V_02}`, "duration: 10"]),
      [
        `4:15 scenes[0].duration: model ${PRO_T2V_02} renders 6 s only and takes no duration, got "10" (1080P renders 6 s only); 10 s is rendered by ${T2V_02}, ${T2V_23}`,
      ],
    ],
    [
      "10 s from the defaults on a 6 s-only model, at the scene",
      `defaults:\n  duration: 10\n${yaml(["prompt: a", `model: ${PRO_T2V_23}`])}`,
      [
        `4:5 scenes[0].duration: model ${PRO_T2V_23} renders 6 s only and takes no duration, got "10" (1080P renders 6 s only) (duration 10 from defaults.duration); 10 s is rendered by ${T2V_02}, ${T2V_23}`,
      ],
    ],
    [
      "1080P on Hailuo 02 standard image-to-video",
      yaml(["prompt: a", "image: a.png", "resolution: 1080P"]),
      [
        `4:17 scenes[0].resolution: resolution must be "512P" or "768P", got "1080P" (model ${I2V_02}); 1080P is rendered by ${PRO_I2V_02}, ${PRO_I2V_23}`,
      ],
    ],
    [
      "512P on text-to-video",
      yaml(["prompt: a", "resolution: 512p"]),
      [
        `3:17 scenes[0].resolution: model ${T2V_02} renders 768P only and takes no resolution, got "512P" (512P is for image-to-video only)`,
      ],
    ],
    [
      "512P with a start and an end frame",
      yaml(["prompt: a", "image: a.png", "end_image: b.png", "resolution: 512P"]),
      [
        `5:17 scenes[0].resolution: resolution 512P: a start and an end image need 768P (MiniMax renders first-to-last frame at 768P) (model ${I2V_02})`,
      ],
    ],
    [
      "a resolution the family does not render",
      yaml(["prompt: a", "resolution: 720p"]),
      ['3:17 scenes[0].resolution: resolution must be 512P, 768P or 1080P, got "720p"'],
    ],
    [
      "an image, an end image or continue_from on a text-to-video model",
      yaml(
        ["id: a", "prompt: a"],
        ["prompt: b", `model: ${T2V_23}`, "image: a.png", "end_image: b.png"],
        ["prompt: c", `model: ${T2V_02}`, "continue_from: a"],
      ),
      [
        `6:12 scenes[1].image: model ${T2V_23} is text-to-video and takes no first frame (image:); use an image-to-video model such as ${I2V_23}`,
        `7:16 scenes[1].end_image: model ${T2V_23} is text-to-video and takes no end frame (end_image:); use an image-to-video model such as ${I2V_23}`,
        `10:20 scenes[2].continue_from: model ${T2V_02} is text-to-video and takes no first frame (continue_from:); use an image-to-video model such as ${I2V_02}`,
      ],
    ],
    [
      "an image scene under a text-to-video default model",
      `defaults:\n  model: ${T2V_23}\n${yaml(["prompt: a"], ["prompt: b", "image: b.png"])}`,
      [
        `6:12 scenes[1].image: model ${T2V_23} (from defaults.model) is text-to-video and takes no first frame (image:); use an image-to-video model such as ${I2V_23}`,
      ],
    ],
    [
      "an image-to-video model without a first frame",
      yaml(["prompt: a", `model: ${FAST_I2V_23}`], ["prompt: b", "end_image: b.png"]),
      [
        `3:12 scenes[0].model: model ${FAST_I2V_23} starts from an image: give image: or continue_from:`,
        `5:16 scenes[1].end_image: model ${I2V_02} starts from an image: give image: or continue_from: (end_image is the last frame only)`,
      ],
    ],
    [
      "an image that leaves the manifest's folder, or that is not a file or an https URL",
      yaml(
        ["prompt: a", "image: ../a.png"],
        ["prompt: b", "image: shots/../../a.png"],
        ["prompt: c", "image: /etc/passwd"],
        ["prompt: d", "image: http://cdn.test/a.png"],
        ["prompt: e", 'end_image: "data:image/png;base64,AAAA"', "image: a.png"],
      ),
      [
        `3:12 scenes[0].image: "../a.png" leaves the manifest's folder: images must lie in it or below it`,
        `5:12 scenes[1].image: "shots/../../a.png" leaves the manifest's folder: images must lie in it or below it`,
        `7:12 scenes[2].image: name the file relative to the manifest's folder, got the absolute path "/etc/passwd"`,
        `9:12 scenes[3].image: use an https URL or a file beside the manifest, got "http://cdn.test/a.png"`,
        `11:16 scenes[4].end_image: expected a file beside the manifest or an https URL, got "data:image/png;base64,AAAA" (data: is not taken)`,
      ],
    ],
    [
      "continue_from an unknown scene",
      yaml(["id: dawn", "prompt: a"], ["prompt: b", "continue_from: dwan"]),
      [
        '5:20 scenes[1].continue_from: no scene has id "dwan"; did you mean "dawn"? (continue_from takes `previous` or a scene id)',
      ],
    ],
    [
      "continue_from itself, and previous on the first scene",
      yaml(
        ["id: a", "prompt: a", "continue_from: previous"],
        ["id: b", "prompt: b", "continue_from: b"],
      ),
      [
        "4:20 scenes[0].continue_from: the first scene has no previous scene to continue from",
        '7:20 scenes[1].continue_from: scene "b" cannot continue from itself',
      ],
    ],
    [
      "a cycle, naming its chain once (a scene leading into it is not blamed)",
      yaml(
        ["id: a", "prompt: a", "continue_from: c"],
        ["id: b", "prompt: b", "continue_from: previous"],
        ["id: c", "prompt: c", "continue_from: b"],
        ["id: d", "prompt: d", "continue_from: c"],
      ),
      [
        "4:20 scenes[0].continue_from: continue_from makes a cycle: a → c → b → a (each continues from the next; a chain must start from a scene with its own first frame)",
      ],
    ],
    [
      "continue_from together with image",
      yaml(["id: a", "prompt: a"], ["prompt: b", "continue_from: previous", "image: b.png"]),
      [
        "5:20 scenes[1].continue_from: continue_from and image both give the first frame: keep one (a continuing scene starts on its source's last frame)",
      ],
    ],
  ];
  it.each(cases)("refuses %s", (_, text, expected) => {
    expect(problemsOf(text)).toEqual(expected);
  });
});

describe("a scene's model, resolution, images and continue_from: accepted", () => {
  it("links continue_from to a later scene when no cycle comes of it, and previous to the one before", () => {
    const m = parseManifest(
      yaml(
        ["id: a", "prompt: a", "continue_from: c"],
        ["id: b", "prompt: b", "continue_from: previous"],
        ["id: c", "prompt: c", "image: c.png"],
      ),
      { file: "s.yaml" },
    );
    expect(m.scenes.map((s) => [s.id, s.endpoint, s.continueFrom])).toEqual([
      ["a", I2V_02, "c"],
      ["b", I2V_02, "a"],
      ["c", I2V_02, undefined],
    ]);
  });

  it("fills what the endpoint renders: 6 s and 1080P on a pro model, 768P by default", () => {
    const m = parseManifest(
      yaml(
        ["prompt: a", `model: ${PRO_T2V_23}`],
        ["prompt: b", `model: ${PRO_I2V_02}`, "image: https://cdn.test/b.png", "duration: 6"],
        ["prompt: c", "image: c.webp", "resolution: 512"],
        ["prompt: d", `model: ${T2V_23}`, "duration: 10", "resolution: 768p"],
      ),
      { file: "s.yaml" },
    );
    expect(m.scenes.map((s) => [s.endpoint, s.duration, s.resolution])).toEqual([
      [PRO_T2V_23, "6", "1080P"],
      [PRO_I2V_02, "6", "1080P"],
      [I2V_02, "6", "512P"],
      [T2V_23, "10", "768P"],
    ]);
    expect(m.scenes[1]!.image).toEqual({ kind: "url", url: "https://cdn.test/b.png" });
    expect(m.scenes[2]!.image).toEqual({
      kind: "unread",
      path: "c.webp",
      source: { file: "s.yaml", line: 9, column: 12 },
    });
  });

  it("applies defaults.model and defaults.resolution to every scene", () => {
    const m = parseManifest(
      `defaults:\n  model: ${I2V_02}\n  resolution: 512P\n${yaml(["prompt: a", "image: a.png"], ["prompt: b", "image: b.png", "resolution: 768P"])}`,
      { file: "s.yaml" },
    );
    expect(m.defaults).toEqual({
      duration: "6",
      prompt_optimizer: true,
      takes: 1,
      model: I2V_02,
      resolution: "512P",
    });
    expect(m.scenes.map((s) => s.resolution)).toEqual(["512P", "768P"]);
  });
});
