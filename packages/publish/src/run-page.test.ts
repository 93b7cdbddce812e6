import { createHash } from "node:crypto";
import {
  appendFile,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readImageFile, type Manifest, type Scene } from "@hailuo/manifest";
import { previewRun, readRunReport, writePick, type PlanItem } from "@hailuo/runner";
import { modelLabel, pageFacts, renderRunPage, shellWord } from "./index.js";
import { greyPng } from "@hailuo/test-utils";

// The run page of a hand-made run folder: gull (Hailuo 02 image-to-video between a start and an
// end image, two takes), wake (continues gull, made from gull#1's last frame), dune (Hailuo 2.3
// Fast from an https image) and calm (the seed). Then a pick of gull#2 makes wake#1 stale.
const I2V = "fal-ai/minimax/hailuo-02/standard/image-to-video";
const FAST = "fal-ai/minimax/hailuo-2.3-fast/standard/image-to-video";
const HOSTILE_URL = `https://example.com/dune.png?a="><script>alert(1)</script>`;

let root: string;
let runDir: string;
let story: string;
let manifest: Manifest;
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

const scene = (id: string, extra: Partial<Scene>): Scene => ({
  id,
  prompt: `the ${id}`,
  duration: "6",
  prompt_optimizer: true,
  takes: 1,
  tags: [],
  source: { file: "story.yaml", line: 1 },
  ...extra,
});

/** Journal records of a finished take: its clip file written, its facts as the runner keeps them. */
async function done(item: PlanItem, at: string): Promise<object[]> {
  const file = `clips/${item.sceneId}_t${item.take}.mp4`;
  const bytes = Buffer.from(`clip ${item.sceneId} ${item.take}`);
  await writeFile(join(runDir, file), bytes);
  const { mtimeMs } = await stat(join(runDir, file));
  const requestId = `req-${item.sceneId}-${item.take}`;
  const { key } = item;
  return [
    { t: "submitting", key, scene: item.sceneId, take: item.take, attempt: 1, at },
    { t: "submitted", key, handle: { endpoint: item.endpoint, requestId, submittedAt: at }, at },
    { t: "completed", key, requestId, videoUrl: "http://x/v.mp4", seconds: 6, usd: 0.3, at },
    { t: "done", key, requestId, file, bytes: bytes.length, sha256: sha(bytes), mtimeMs, at },
  ].map((r) => (r.t === "done" ? { ...r, durationS: 6.04, width: 1366, height: 768 } : r));
}

const journal = (lines: object[]) =>
  appendFile(join(runDir, "journal.jsonl"), lines.map((l) => `${JSON.stringify(l)}\n`).join(""));

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "hailuo-run-page-"));
  runDir = join(root, "run");
  story = join(root, "story");
  await mkdir(join(runDir, "clips"), { recursive: true });
  await mkdir(story);
  await writeFile(join(story, "start.png"), greyPng(640, 360, 40));
  await writeFile(join(story, "end.png"), greyPng(640, 360, 200));
  const image = await readImageFile("start.png", story);
  const endImage = await readImageFile("end.png", story);
  manifest = {
    name: "gulls",
    file: join(story, "story.yaml"),
    format: "yaml",
    defaults: { duration: "6", prompt_optimizer: true, takes: 1 },
    vars: {},
    scenes: [
      scene("gull", { endpoint: I2V, resolution: "768P", image, endImage, takes: 2 }),
      scene("wake", { endpoint: I2V, resolution: "768P", continueFrom: "gull" }),
      scene("dune", {
        endpoint: FAST,
        resolution: "768P",
        image: { kind: "url", url: HOSTILE_URL },
      }),
      scene("calm", {}),
    ],
    thumbnails: { posterAt: "auto", sheetColumns: 4, preview: "none" },
  };
  await writeFile(join(runDir, "run.json"), JSON.stringify({ version: 2, manifest }));
  const at = new Date().toISOString();
  // The account's price of Hailuo 02 image-to-video in this run: $0.05/s.
  await journal([
    {
      t: "run",
      name: "gulls",
      manifest: manifest.file,
      items: 5,
      pid: 1,
      unitPricesUsd: { [I2V]: 0.05 },
      at,
    },
  ]);
  // gull's takes first; then wake, keyed (as the runner keys it) by gull#1's clip.
  const gull = (await previewRun(runDir, manifest)).items.filter((i) => i.sceneId === "gull");
  await journal((await Promise.all(gull.map((i) => done(i, at)))).flat());
  const wake = (await previewRun(runDir, manifest)).items.find((i) => i.sceneId === "wake")!;
  expect(wake.lastFrame).toMatchObject({ sceneId: "gull", take: 1 });
  await journal(await done(wake, at));
});
afterEach(() => rm(root, { recursive: true, force: true }));

const page = async () => {
  const report = await readRunReport(runDir);
  const facts = await pageFacts(runDir, manifest, report);
  return { report, facts, html: renderRunPage(report, { posters: {}, previews: {} }, facts) };
};
const cardOf = (html: string, id: string) =>
  html.slice(
    html.indexOf(`id="scene-${id}"`),
    html.indexOf("</article>", html.indexOf(`id="scene-${id}"`)),
  );

describe("modelLabel", () => {
  it.each([
    [I2V, "768P", "Hailuo 02 · i2v · 768P"],
    [I2V, "512P", "Hailuo 02 · i2v · 512P"],
    ["fal-ai/minimax/hailuo-02/standard/text-to-video", undefined, "Hailuo 02 · t2v"],
    ["fal-ai/minimax/hailuo-02/pro/image-to-video", "1080P", "Hailuo 02 Pro · i2v · 1080P"],
    ["fal-ai/minimax/hailuo-2.3/standard/text-to-video", "768P", "Hailuo 2.3 · t2v · 768P"],
    [FAST, "768P", "Hailuo 2.3 Fast · i2v · 768P"],
    ["fal-ai/other/model", "768P", "fal-ai/other/model · 768P"],
  ])("%s at %s is %s", (id, resolution, label) => {
    expect(modelLabel(id, resolution)).toBe(label);
  });
});

describe("the run page shows each scene's model, images and chain", () => {
  it("labels each model and shows the chain both ways, with the frame it continues from", async () => {
    // The last frame the runner kept of gull#1 when it submitted wake.
    await mkdir(join(runDir, "frames"));
    await writeFile(join(runDir, "frames", "gull_t1-last.png"), greyPng(640, 360, 90));
    const { html } = await page();
    expect(cardOf(html, "wake-1")).toContain(
      '<img src="frames/gull_t1-last.png" alt="start: last frame of gull#1" loading="lazy">',
    );
    expect(cardOf(html, "gull-1")).toContain("<dt>model</dt><dd>Hailuo 02 · i2v · 768P</dd>");
    expect(cardOf(html, "dune-1")).toContain("<dd>Hailuo 2.3 Fast · i2v · 768P</dd>");
    expect(cardOf(html, "calm-1")).toContain("<dd>Hailuo 02 · t2v</dd>");
    expect(cardOf(html, "wake-1")).toContain("<dt>chain</dt><dd>continues gull</dd>");
    expect(cardOf(html, "gull-2")).toContain("<dt>chain</dt><dd>wake continues from here</dd>");
    expect(cardOf(html, "calm-1")).not.toContain("<dt>chain</dt>");
  });

  it("copies the image files into images/ by content and links an https image, escaped", async () => {
    const { html } = await page();
    const start = await readFile(join(story, "start.png"));
    const end = await readFile(join(story, "end.png"));
    expect((await readdir(join(runDir, "images"))).sort()).toEqual(
      [`${sha(start)}.png`, `${sha(end)}.png`].sort(),
    );
    expect(await readFile(join(runDir, "images", `${sha(start)}.png`))).toEqual(start);
    const gull = cardOf(html, "gull-1");
    expect(gull).toContain(`<img src="images/${sha(start)}.png" alt="start: start.png, 640×360"`);
    expect(gull).toContain(`<img src="images/${sha(end)}.png" alt="end: end.png, 640×360"`);
    // Never the manifest's own folder: the page stands on the run folder alone.
    const sources = [...html.matchAll(/ (?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
    expect(sources.filter((s) => s.includes(story))).toEqual([]);
    expect(sources.filter((s) => /^images\//.test(s))).toHaveLength(8);
    expect(html).not.toContain("file:");
    expect(cardOf(html, "dune-1")).toContain(
      '<a class="url" href="https://example.com/dune.png?a=&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" rel="noreferrer">',
    );
    expect(html).not.toContain("<script>");
  });

  it("copies nothing but the image the run checked, whatever path run.json names", async () => {
    // A secret beside the run, named in place of gull's start image (with its recorded hash).
    await writeFile(join(root, "secret.txt"), "password=hunter2");
    const gull = manifest.scenes[0]!;
    const forged = {
      ...gull,
      image: { ...(gull.image as object), path: join(root, "secret.txt") },
    };
    const facts = await pageFacts(runDir, {
      ...manifest,
      scenes: [forged as Scene, ...manifest.scenes.slice(1)],
    });
    expect(facts.scenes[0]!.image).toEqual({
      kind: "missing",
      name: "secret.txt",
      why: "it changed since the run checked it",
    });
    const copied = await readdir(join(runDir, "images"));
    for (const f of copied)
      expect(await readFile(join(runDir, "images", f), "utf8")).not.toContain("hunter2");
  });

  it("writes nothing through an images/ that links out of the run folder", async () => {
    await mkdir(join(root, "elsewhere"));
    await symlink(join(root, "elsewhere"), join(runDir, "images"));
    const facts = await pageFacts(runDir, manifest);
    expect(facts.scenes[0]!.image).toMatchObject({ kind: "missing", name: "start.png" });
    expect(await readdir(join(root, "elsewhere"))).toEqual([]);
  });
});

describe("a pick upstream makes the continuing scene stale", () => {
  it("marks the row stale and says what making it anew costs, at the run's price", async () => {
    let { html, facts } = await page();
    expect(facts.stale).toEqual([]);
    expect(html).not.toContain(`<section class="stale-notice">`);
    expect(html).not.toMatch(/class="scene [a-z]+[^"]* stale"/);

    await writePick(runDir, "gull", 2);
    ({ html, facts } = await page());
    expect(facts.stale).toMatchObject([
      { scene: "wake", take: 1, usd: 0.3, from: { scene: "gull", take: 2 } },
    ]);
    // gull#2's last frame is not made until wake is submitted again.
    expect(facts.scenes.find((s) => s.id === "wake")!.image).toBeUndefined();
    const wake = cardOf(html, "wake-1");
    expect(wake).toMatch(/^id="scene-wake-1">/);
    expect(html).toContain('<article class="scene cached chosen stale" id="scene-wake-1">');
    expect(wake).toContain("<dt>to make anew</dt><dd>$0.30</dd>");
    expect(wake).toMatch(/<dt>stale<\/dt><dd>made from the last frame of another take of gull/);
    expect(cardOf(html, "gull-2")).not.toContain("stale");
    expect(html).toContain("<li>wake#1 will be made anew from gull#2&#39;s last frame: $0.30</li>");
    expect(html).toContain(`<code>hailuo resume ${runDir}</code> makes them anew ($0.30)`);
  });

  it("names a bucket run by its address, not the scratch folder the page is made in", async () => {
    await writePick(runDir, "gull", 2);
    const report = await readRunReport(runDir);
    const facts = await pageFacts(runDir, manifest, report, { address: "s3://films/team/r1" });
    expect(facts.stale).toHaveLength(1);
    expect(facts.resume).toBe("hailuo resume s3://films/team/r1");
  });
});

describe("shellWord", () => {
  it("quotes a path only when a shell would split or expand it", () => {
    expect(shellWord("runs/gulls-2024")).toBe("runs/gulls-2024");
    expect(shellWord("my run's $HOME")).toBe(`'my run'\\''s $HOME'`);
  });
});
