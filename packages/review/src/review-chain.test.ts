import { createHash } from "node:crypto";
import {
  appendFile,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { planRun, previewRun, writePick, type PlanItem } from "@hailuo/runner";
import type { ReviewActions, ReviewServer, ReviewState } from "./index.js";
import { startReviewServer } from "./index.js";
import { greyPng } from "@hailuo/test-utils";

type Manifest = Parameters<typeof planRun>[0];
type Scene = Manifest["scenes"][number];

// The review page of a hand-made run folder, over real HTTP: gull (Hailuo 02 image-to-video
// between a start and an end image, two takes), wake (continues gull, made from gull#1's last
// frame) and calm (the seed). A pick of gull#2 makes wake#1 stale.
const I2V = "fal-ai/minimax/hailuo-02/standard/image-to-video";
const START = `start <img src=x onerror=alert(1)> "q".png`;

let root: string;
let runDir: string;
let story: string;
let manifest: Manifest;
let server: ReviewServer | undefined;
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** An image file as a checked manifest records it (what `loadManifest` would say of it). */
async function imageFile(name: string, shade: number) {
  const bytes = greyPng(640, 360, shade);
  await writeFile(join(story, name), bytes);
  const facts = { sha256: sha(bytes), bytes: bytes.length, width: 640, height: 360 };
  return { kind: "file" as const, path: join(story, name), format: "png" as const, ...facts };
}

const actions: ReviewActions = {
  pick: (scene, take) => writePick(runDir, scene, take),
  quote: async () => ({ usd: 0 }),
  reroll: async () => {},
  assemble: async () => {},
};

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
  const facts = { bytes: bytes.length, sha256: sha(bytes), mtimeMs, durationS: 6.04 };
  return [
    { t: "submitting", key, scene: item.sceneId, take: item.take, attempt: 1, at },
    { t: "submitted", key, handle: { endpoint: item.endpoint, requestId, submittedAt: at }, at },
    { t: "completed", key, requestId, videoUrl: "http://x/v.mp4", seconds: 6, usd: 0.27, at },
    { t: "done", key, requestId, file, ...facts, width: 1366, height: 768, at },
  ];
}

const journal = (lines: object[]) =>
  appendFile(join(runDir, "journal.jsonl"), lines.map((l) => `${JSON.stringify(l)}\n`).join(""));

async function writeRun(m: Manifest): Promise<void> {
  await writeFile(join(runDir, "run.json"), JSON.stringify({ version: 2, manifest: m }));
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "hailuo-review-chain-"));
  runDir = join(root, "run");
  story = join(root, "story");
  await mkdir(join(runDir, "clips"), { recursive: true });
  await mkdir(story);
  const image = await imageFile(START, 40);
  const endImage = await imageFile("end.png", 200);
  manifest = {
    name: "gulls",
    file: join(story, "story.yaml"),
    format: "yaml",
    defaults: { duration: "6", prompt_optimizer: true, takes: 1 },
    vars: {},
    scenes: [
      scene("gull", { endpoint: I2V, resolution: "768P", image, endImage, takes: 2 }),
      scene("wake", { endpoint: I2V, resolution: "768P", continueFrom: "gull" }),
      scene("calm", {}),
    ],
    thumbnails: { posterAt: "auto", sheetColumns: 4, preview: "none" },
  };
  await writeRun(manifest);
  const at = new Date().toISOString();
  await journal([{ t: "run", name: "gulls", manifest: manifest.file, items: 4, pid: 1, at }]);
  // gull's takes first; then wake, keyed (as the runner keys it) by gull#1's clip.
  const gull = (await previewRun(runDir, manifest)).items.filter((i) => i.sceneId === "gull");
  await journal((await Promise.all(gull.map((i) => done(i, at)))).flat());
  const wake = (await previewRun(runDir, manifest)).items.find((i) => i.sceneId === "wake")!;
  await journal(await done(wake, at));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(root, { recursive: true, force: true });
});

async function open() {
  server = await startReviewServer({ runDir, actions, usdPerSecond: 0.045 });
  const base = new URL(server.url).origin;
  const headers = { "x-hailuo-token": server.token };
  const page = async () => {
    const r = await fetch(`${base}/?token=${server!.token}`);
    expect(r.status).toBe(200);
    return r.text();
  };
  const state = async () =>
    (await (await fetch(`${base}/api/state`, { headers })).json()) as ReviewState;
  return { base, headers, page, state };
}

/** The markup of one part of the page, by its key. */
const partOf = (text: string, key: string) => {
  const at = text.indexOf(`data-part="${key}"`);
  return text.slice(at, text.indexOf('data-part="', at + 10));
};

describe("each scene's model and chain", () => {
  it("labels the model on the tiles and scenes, and links a continuing scene to its source", async () => {
    const { page } = await open();
    const text = await page();
    const tiles = partOf(text, "overview");
    expect(tiles).toContain(`<span class="model" title="${I2V}">Hailuo 02 · i2v · 768P</span>`);
    expect(tiles).toContain(
      '<span class="model" title="fal-ai/minimax/hailuo-02/standard/text-to-video">Hailuo 02 · t2v</span>',
    );
    // wake's tile is joined to gull's, just before it; each says which way the chain goes.
    expect(tiles).toMatch(
      /<li><a class="tile" href="#scene-gull"[^]*<span class="chain">wake continues from here<\/span>/,
    );
    expect(tiles).toMatch(
      /<li class="joined"><a class="tile" href="#scene-wake"[^]*<span class="chain">continues gull<\/span>/,
    );
    expect(tiles.match(/class="joined"/g)).toHaveLength(1);
    expect(partOf(text, "scene-head:wake")).toContain('<p class="facts chain">continues gull</p>');
    expect(partOf(text, "scene-head:gull")).toContain(
      `<p class="facts model" title="${I2V}">Hailuo 02 · i2v · 768P</p>`,
    );
  });
});

describe("start and end images are served from the run folder only", () => {
  it("shows copies in images/ by content, escaped, and never a path outside the folder", async () => {
    const { base, headers, page } = await open();
    const text = await page();
    const start = await readFile(join(story, START));
    const head = partOf(text, "scene-head:gull");
    const alt = "start: start &lt;img src=x onerror=alert(1)&gt; &quot;q&quot;.png, 640×360";
    expect(head).toContain(`<img src="/files/images/${sha(start)}.png" alt="${alt}"`);
    expect(head).toMatch(/<img src="\/files\/images\/[0-9a-f]{64}\.png" alt="end: end\.png/);
    expect(text).not.toContain("<img src=x");
    expect(text).not.toContain(story);
    const r = await fetch(`${base}/files/images/${sha(start)}.png`, { headers });
    expect([r.status, r.headers.get("content-type")]).toEqual([200, "image/png"]);
    expect(Buffer.from(await r.arrayBuffer())).toEqual(start);
    // The manifest's own folder is not reachable through the files route.
    const out = await fetch(`${base}/files/..%2fstory%2fend.png`, { headers });
    expect(out.status).toBe(404);
  });

  it("a run.json naming a file outside in place of an image shows its name, copies nothing", async () => {
    await writeFile(join(root, "secret.txt"), "password=hunter2");
    const gull = manifest.scenes[0]!;
    const forged = { ...gull, image: { ...gull.image!, path: join(root, "secret.txt") } };
    await writeRun({ ...manifest, scenes: [forged as Scene, ...manifest.scenes.slice(1)] });
    const { base, headers, page } = await open();
    const head = partOf(await page(), "scene-head:gull");
    expect(head).toContain(
      '<span class="error">start: secret.txt (not shown: it changed since the run checked it)</span>',
    );
    const copies = await readdir(join(runDir, "images"));
    expect(copies).toHaveLength(1); // the end image
    for (const f of copies) {
      const served = await fetch(`${base}/files/images/${f}`, { headers });
      expect(await served.text()).not.toContain("hunter2");
    }
  });
});

describe("a pick upstream", () => {
  it("says which scenes it made stale and what making them anew costs, live and in the page", async () => {
    const { base, headers, page, state } = await open();
    expect((await state()).stale).toEqual([]);
    expect(partOf(await page(), "stale")).not.toContain("<li");

    const events = await fetch(`${base}/api/events`, { headers });
    const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    const next = async () => {
      while (!buf.includes("\n\n")) buf += (await reader.read()).value ?? "";
      const [event, rest] = [buf.slice(0, buf.indexOf("\n\n")), buf.slice(buf.indexOf("\n\n") + 2)];
      buf = rest;
      return JSON.parse(
        event
          .split("\n")
          .find((l) => l.startsWith("data: "))!
          .slice(6),
      ) as {
        parts: Record<string, { html: string }>;
      };
    };
    await next();
    const picked = await fetch(`${base}/api/pick`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify({ scene: "gull", take: 2 }),
    });
    expect(picked.status).toBe(200);
    const live = await next();
    await reader.cancel();
    const notice = "wake#1 will be made anew from gull#2&#39;s last frame: $0.27";
    expect(live.parts.stale!.html).toContain(`<li data-scene="wake" data-take="1">${notice}</li>`);

    const s = await state();
    expect(s.stale).toMatchObject([
      { scene: "wake", take: 1, usd: 0.27, from: { scene: "gull", take: 2 } },
    ]);
    const text = await page();
    const stale = partOf(text, "stale");
    expect(stale).toContain(notice);
    expect(stale).toContain(
      `Nothing is made anew until you run <code>hailuo resume ${runDir}</code> ($0.27 in all)`,
    );
    expect(partOf(text, "takes:wake")).toMatch(
      /<div class="stale-note"><span class="badge stale">stale<\/span> \$0\.27 to make anew: made from the last frame of another take of gull/,
    );
    expect(partOf(text, "overview")).toContain("stale: $0.27 to make anew</span>");
    expect(partOf(text, "takes:gull")).not.toContain("stale");
  });
});
