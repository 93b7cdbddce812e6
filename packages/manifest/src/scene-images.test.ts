import { createHash } from "node:crypto";
import { mkdir, readFile, symlink, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeTempDir } from "@hailuo/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManifestError, loadManifest } from "./index.js";
import { ffmpegImages } from "./test-images.js";
import { greyPng } from "@hailuo/test-utils";

let tmp: { dir: string; cleanup: () => Promise<void> };
let dir = "";

beforeAll(async () => {
  tmp = await makeTempDir("hailuo-manifest-images-");
  dir = join(tmp.dir, "story");
  await mkdir(join(dir, "shots"), { recursive: true });
  await ffmpegImages(dir);
  const files: [string, Buffer | string][] = [
    ["ok.png", greyPng(640, 360)],
    ["png-named.jpg", greyPng(640, 360, 40)],
    ["gif-named.png", await readFile(join(dir, "anim.gif"))],
    ["text.jpg", "not a picture\n"],
    ["small.png", greyPng(600, 300)],
    ["just-big-enough.png", greyPng(602, 301)],
    ["wide.png", greyPng(1000, 399)],
    ["widest.png", greyPng(1000, 400)],
    ["tall.png", greyPng(399, 1000)],
    ["cut.png", greyPng(640, 360).subarray(0, 20)],
    ["shots/inner.png", greyPng(500, 500)],
    [join("..", "outside.png"), greyPng(640, 360)],
  ];
  for (const [name, bytes] of files) await writeFile(join(dir, name), bytes);
  await mkdir(join(dir, "folder.png"));
  // 20 MB exactly, sparse: refused from its size, never read.
  await writeFile(join(dir, "huge.png"), greyPng(640, 360));
  await truncate(join(dir, "huge.png"), 20 * 1024 * 1024);
  await symlink(join(tmp.dir, "outside.png"), join(dir, "link-out.png"));
  await symlink(join(dir, "shots", "inner.png"), join(dir, "link-in.png"));
  await symlink(join(dir, "gone.png"), join(dir, "dangling.png"));
});

afterAll(() => tmp.cleanup());

/** The problems loading a manifest of one scene per image is refused with. */
async function refusals(images: string[]): Promise<string[]> {
  const file = join(dir, "story.yaml");
  await writeFile(
    file,
    `scenes:\n${images.map((img, i) => `  - prompt: scene ${i}\n    image: ${img}\n`).join("")}`,
  );
  const error = await loadManifest(file).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ManifestError);
  return (error as ManifestError).problems.map(
    (p) => `${p.line}:${p.column} ${p.field}: ${p.message.replaceAll(dir, "<dir>")}`,
  );
}

describe("image files, read and checked when the manifest is loaded", () => {
  it("refuses every image MiniMax would refuse, each at its file:line, all at once", async () => {
    expect(
      await refusals([
        "missing.png",
        "dangling.png",
        "folder.png",
        "gif-named.png",
        "text.jpg",
        "small.png",
        "wide.png",
        "tall.png",
        "cut.png",
        "huge.png",
        "link-out.png",
      ]),
    ).toEqual([
      "3:12 scenes[0].image: image file <dir>/missing.png not found (paths are relative to the manifest's folder)",
      "5:12 scenes[1].image: image file <dir>/dangling.png not found (paths are relative to the manifest's folder)",
      "7:12 scenes[2].image: image folder.png is not a file",
      "9:12 scenes[3].image: image gif-named.png is gif; MiniMax reads JPG, PNG and WebP (judged by its bytes, not its name)",
      "11:12 scenes[4].image: image text.jpg is not an image; MiniMax reads JPG, PNG and WebP (judged by its bytes, not its name)",
      "13:12 scenes[5].image: image small.png is 600×300; its short side must be over 300 px",
      "15:12 scenes[6].image: image wide.png is 1000×399 (width ÷ height 2.51); it must lie between 0.4 and 2.5",
      "17:12 scenes[7].image: image tall.png is 399×1000 (width ÷ height 0.40); it must lie between 0.4 and 2.5",
      "19:12 scenes[8].image: image cut.png is cut short or broken: its header cannot be read",
      "21:12 scenes[9].image: image huge.png is 20.0 MB; MiniMax takes images under 20 MB",
      `23:12 scenes[10].image: image link-out.png is a link out of the manifest's folder (to ${tmp.dir}/outside.png): images must lie in it or below it`,
    ]);
  });

  it("reads JPEG, PNG and WebP by their bytes (a PNG named .jpg is a PNG), the edges of the rules, links inside the folder", async () => {
    const file = join(dir, "fine.yaml");
    const names = [
      "key.jpg",
      "key.webp",
      "png-named.jpg",
      "just-big-enough.png",
      "widest.png",
      "shots/inner.png",
      "link-in.png",
    ];
    await writeFile(
      file,
      `scenes:\n${names.map((n, i) => `  - prompt: scene ${i}\n    image: ${n}\n`).join("")}`,
    );
    const m = await loadManifest(file);
    const sha = async (n: string) =>
      createHash("sha256")
        .update(await readFile(join(dir, n)))
        .digest("hex");
    expect(m.scenes.map((s) => s.image)).toEqual([
      expect.objectContaining({
        path: join(dir, "key.jpg"),
        format: "jpeg",
        width: 640,
        height: 360,
      }),
      expect.objectContaining({
        path: join(dir, "key.webp"),
        format: "webp",
        width: 640,
        height: 360,
      }),
      {
        kind: "file",
        path: join(dir, "png-named.jpg"),
        sha256: await sha("png-named.jpg"),
        bytes: greyPng(640, 360, 40).length,
        format: "png",
        width: 640,
        height: 360,
      },
      expect.objectContaining({ width: 602, height: 301 }),
      expect.objectContaining({ width: 1000, height: 400 }),
      expect.objectContaining({ path: join(dir, "shots", "inner.png") }),
      // A link inside the folder is read at its real path: what is hashed is what is uploaded.
      expect.objectContaining({
        path: join(dir, "shots", "inner.png"),
        sha256: await sha("shots/inner.png"),
      }),
    ]);
  });

  it("leaves a manifest without images as it was parsed (no file is touched)", async () => {
    const file = join(dir, "seed.yaml");
    await writeFile(file, "scenes:\n  - prompt: a quiet harbour\n");
    const m = await loadManifest(file);
    expect(Object.keys(m.scenes[0]!)).toEqual([
      "id",
      "prompt",
      "duration",
      "prompt_optimizer",
      "takes",
      "tags",
      "source",
    ]);
  });
});
