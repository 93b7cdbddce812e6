import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { planRun, writePick } from "@hailuo/runner";

type Manifest = Parameters<typeof planRun>[0];
import type { ReviewActions, ReviewServer, ReviewState } from "./index.js";
import { startReviewServer } from "./index.js";

// The page as the server draws it, over real HTTP, on a hand-made run folder: three scenes whose
// clips are done in the journal (a with two takes, b, c), a film made from take 1 of a and b
// before c finished, then a pick of a's take 2. No browser: what a page without script shows.
const ENDPOINT = "fal-ai/minimax/hailuo-02/standard/text-to-video";
const HOSTILE = `a cat <img src=x onerror="alert(1)"> & "friends"`;

let root: string;
let runDir: string;
let server: ReviewServer | undefined;
let calls: string[];

const actions: ReviewActions = {
  pick: async (scene, take) => (
    calls.push(`pick ${scene} ${take}`),
    writePick(runDir, scene, take)
  ),
  quote: async (_scene, takes) => ({ usd: takes * 0.27 }),
  reroll: async () => {},
  assemble: async () => void calls.push("assemble"),
};

const scene = (id: string, prompt: string, takes: number, extra: object = {}) => ({
  id,
  prompt,
  duration: "6" as const,
  prompt_optimizer: true,
  takes,
  tags: [],
  source: { file: "story.yaml" },
  ...extra,
});

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "hailuo-review-page-"));
  runDir = join(root, "run");
  await mkdir(join(runDir, "clips"), { recursive: true });
  const manifest: Manifest = {
    name: "story <marquee>",
    file: join(runDir, "story.yaml"),
    format: "yaml",
    defaults: { duration: "6", prompt_optimizer: true, takes: 1 },
    vars: {},
    scenes: [
      scene("a", HOSTILE, 2, { transition: { type: "wipeleft", durationS: 1 } }),
      scene("b", "a dog", 1),
      scene("c", "a bird", 1),
    ],
    assemble: {
      transition: { type: "fade", durationS: 0.5 },
      output: "film.mp4",
      placeholders: false,
    },
    thumbnails: { posterAt: "auto", sheetColumns: 4, preview: "none" },
  };
  await writeFile(join(runDir, "run.json"), JSON.stringify({ version: 2, manifest }));
  const at = new Date().toISOString();
  const lines: object[] = [
    { t: "run", name: manifest.name, manifest: manifest.file, items: 4, pid: 1, at },
  ];
  for (const item of planRun(manifest)) {
    const requestId = `req-${item.sceneId}-${item.take}-0000`;
    const file = `clips/${item.sceneId}_t${item.take}.mp4`;
    const bytes = Buffer.from(`clip ${item.sceneId} ${item.take}`);
    await writeFile(join(runDir, file), bytes);
    const { mtimeMs } = await stat(join(runDir, file));
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    const { key } = item;
    lines.push(
      { t: "submitting", key, scene: item.sceneId, take: item.take, attempt: 1, at },
      { t: "submitted", key, handle: { endpoint: ENDPOINT, requestId, submittedAt: at }, at },
      { t: "completed", key, requestId, videoUrl: "http://x/v.mp4", seconds: 6, usd: 0.27, at },
      { t: "done", key, requestId, file, bytes: bytes.length, sha256, mtimeMs, at },
      // durationS etc. of ClipFacts: the page shows the probed length.
    );
    Object.assign(lines.at(-1)!, { durationS: 6.04, width: 1366, height: 768 });
  }
  await writeFile(join(runDir, "journal.jsonl"), lines.map((l) => JSON.stringify(l)).join("\n"));
  // The film made before c's clip was there: take 1 of a, take 1 of b.
  await writeFile(join(runDir, "film.mp4"), "film bytes");
  const chapters = [
    { scene: "a", take: 1, file: "clips/a_t1.mp4", startS: 0, endS: 5.5 },
    { scene: "b", take: 1, file: "clips/b_t1.mp4", startS: 5.5, endS: 11.04 },
  ];
  await writeFile(
    join(runDir, "film.mp4.json"),
    JSON.stringify({
      version: 1,
      file: "film.mp4",
      durationS: 11.04,
      mode: "reencode",
      chapters,
      madeAt: at,
      signature: "x",
    }),
  );
  // Clips older than the film, as they are when the film is made after them.
  const past = new Date(Date.now() - 60_000);
  for (const f of ["a_t1", "a_t2", "b_t1"])
    await utimes(join(runDir, "clips", `${f}.mp4`), past, past);
  calls = [];
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(root, { recursive: true, force: true });
});

async function open(): Promise<{ base: string; token: string; page: () => Promise<string> }> {
  server = await startReviewServer({ runDir, actions, usdPerSecond: 0.045 });
  const base = new URL(server.url).origin;
  const token = server.token;
  const page = async () => {
    const r = await fetch(`${base}/?token=${token}`);
    expect(r.status).toBe(200);
    return r.text();
  };
  return { base, token, page };
}

const state = async (base: string, token: string) =>
  (await (
    await fetch(`${base}/api/state`, { headers: { "x-hailuo-token": token } })
  ).json()) as ReviewState & { parts?: unknown };

describe("the page is drawn on the server", () => {
  it("shows the overview (posters, lengths, transitions, model) and the takes without script", async () => {
    await mkdir(join(runDir, "thumbs"));
    await writeFile(join(runDir, "thumbs", "a_t1.jpg"), "jpeg");
    const { mtimeMs } = await stat(join(runDir, "thumbs", "a_t1.jpg"));
    const { page } = await open();
    const text = await page();
    // The picked take's poster, its address changing with the file.
    expect(text).toContain(
      `<img src="/files/thumbs/a_t1.jpg?v=${Math.round(mtimeMs)}" alt="" loading="lazy">`,
    );
    expect(text.match(/<span class="blank"><\/span>/g)).toHaveLength(2);
    const tiles = [...text.matchAll(/<a class="tile[^"]*" href="#scene-(\w+)"/g)].map((m) => m[1]);
    expect(tiles).toEqual(["a", "b", "c"]);
    // a starts the film; b comes in with a's own wipe; c with the film's default fade.
    expect(text).toContain("<span>start</span>");
    expect(text).toContain("<span>wipeleft 1.0 s in</span>");
    expect(text).toContain("<span>fade 0.5 s in</span>");
    expect(text).toContain("take 1 · 6.0 s");
    expect(text).toContain(`<span class="model" title="${ENDPOINT}">Hailuo 02 · t2v</span>`);
    // Takes side by side: a's two cards in one row, each with its key.
    const aTakes = text.slice(
      text.indexOf('data-part="takes:a"'),
      text.indexOf('data-part="takes:b"'),
    );
    expect(
      [...aTakes.matchAll(/<figure class="take[^"]*" data-take="(\d)"/g)].map((m) => m[1]),
    ).toEqual(["1", "2"]);
    expect(aTakes).toContain('<kbd title="press 2 to pick it">2</kbd>');
    // Labelled controls, the help line with the keys.
    expect(text).toMatch(/<label>Takes <input type="number" name="takes"/);
    expect(text).toMatch(/<label>Prompt for a re-roll <textarea/);
    expect(text).toMatch(/id="help">Keys: <kbd>j<\/kbd>/);
  });

  it("escapes every value from the run: a prompt's markup is text, in the page and in the parts", async () => {
    const { base, token, page } = await open();
    const text = await page();
    expect(text).not.toContain("<img src=x");
    expect(text).not.toContain("<marquee>");
    expect(text).toContain(
      "a cat &lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; &quot;friends&quot;",
    );
    expect(text).toContain("<title>story &lt;marquee&gt; · hailuo review</title>");
    const events = await fetch(`${base}/api/events`, { headers: { "x-hailuo-token": token } });
    const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    while (!buf.includes("\n\n")) buf += (await reader.read()).value ?? "";
    await reader.cancel();
    const data = JSON.parse(
      buf
        .split("\n")
        .find((l) => l.startsWith("data: "))!
        .slice(6),
    ) as {
      parts: Record<string, { html: string }>;
    };
    const all = Object.values(data.parts)
      .map((p) => p.html)
      .join("");
    expect(all).toContain("story");
    expect(all).not.toContain("<img src=x");
    expect(all).not.toContain("<marquee>");
  });

  it("only the page's own script runs (a nonce in its CSP), and the favicon is answered", async () => {
    const { base, token } = await open();
    const r = await fetch(`${base}/?token=${token}`);
    const csp = r.headers.get("content-security-policy")!;
    const nonce = /'nonce-([^']+)'/.exec(csp)![1]!;
    const text = await r.text();
    expect(text).toContain(`<script nonce="${nonce}">`);
    expect(text).toContain(`<style nonce="${nonce}">`);
    expect(text).not.toMatch(/ style="/);
    expect(text.match(/<script/g)).toHaveLength(1);
    expect(text).toContain('<link rel="icon" type="image/svg+xml" href="data:image/svg+xml,');
    const icon = await fetch(`${base}/favicon.ico`, { headers: { "x-hailuo-token": token } });
    expect([icon.status, icon.headers.get("content-type")]).toEqual([200, "image/svg+xml"]);
    expect(await icon.text()).toMatch(/^<svg /);
    // Still a read: without the token, nothing.
    expect((await fetch(`${base}/favicon.ico`)).status).toBe(401);
  });

  it("a folder it cannot read still gets a page, saying why, that the live feed redraws", async () => {
    const { page } = await open();
    await writeFile(join(runDir, "run.json"), "{");
    const text = await page();
    expect(text).toContain('<body data-drawn="no">');
    expect(text).toMatch(/<p class="error">the run could not be read: /);
    expect(text).not.toContain('class="tile');
  });
});

describe("the film's staleness", () => {
  it("says which scenes the film shows other takes of, and stops saying it once the film matches", async () => {
    const { base, token, page } = await open();
    // Before any pick: a's take 1 is picked and in the film; c is not in it.
    let s = await state(base, token);
    expect(s.film!.changes).toEqual([{ scene: "c", why: "added", pickTake: 1 }]);

    const r = await fetch(`${base}/api/pick`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-hailuo-token": token },
      body: JSON.stringify({ scene: "a", take: 2 }),
    });
    expect(r.status).toBe(200);
    s = await state(base, token);
    expect(s.film!.changes).toEqual([
      { scene: "a", why: "pick", filmTake: 1, pickTake: 2 },
      { scene: "c", why: "added", pickTake: 1 },
    ]);
    const a = s.scenes.find((x) => x.id === "a")!;
    expect(a.takes.map((t) => [t.take, t.chosen, t.inFilm])).toEqual([
      [1, false, true],
      [2, true, false],
    ]);
    const text = await page();
    expect(text).toContain("<b>The film is out of date</b>");
    expect(text).toContain('<li data-scene="a">a: film uses take 1; assemble for take 2</li>');
    expect(text).toContain('<li data-scene="c">c: not in the film; assemble for take 1</li>');
    expect(text).toMatch(
      /<button id="assemble" type="button">Assemble for the current picks<\/button>/,
    );
    expect(text).toContain('<span class="tile-film stale">film: take 1</span>');

    // A film made from the picks (written after its clips) is up to date.
    await writeFile(
      join(runDir, "film.mp4.json"),
      JSON.stringify({
        version: 1,
        file: "film.mp4",
        durationS: 17,
        mode: "reencode",
        chapters: ["a_t2", "b_t1", "c_t1"].map((f, i) => ({
          scene: f[0],
          take: Number(f.at(-1)),
          file: `clips/${f}.mp4`,
          startS: i * 6,
          endS: i * 6 + 6,
        })),
        madeAt: new Date().toISOString(),
        signature: "y",
      }),
    );
    await writeFile(join(runDir, "film.mp4"), "new film bytes");
    expect((await state(base, token)).film!.changes).toEqual([]);
    expect(await page()).toContain("<b>The film is up to date</b>");

    // The assemble button is the one action: the page's POST reaches it with the token only.
    expect(
      (
        await fetch(`${base}/api/assemble`, {
          method: "POST",
          headers: { "x-hailuo-token": token },
        })
      ).status,
    ).toBe(202);
    expect(calls).toEqual(["pick a 2", "assemble"]);
  });
});
