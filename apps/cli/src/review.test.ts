import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { chromium } from "playwright-core";
import { describe, expect, it } from "vitest";
import { decodeErrors, heldClock, waitFor } from "@hailuo/test-utils";
import { cli, cliFixture, stdoutOf } from "./test-cli.js";

// The review page end to end: `hailuo run` and `hailuo review` as real processes, the page in
// Debian's headless Chromium (scripts/setup.sh --test), its buttons running `hailuo reroll` and
// `hailuo assemble`, and the film checked frame by frame against the chosen clips.
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = resolve(import.meta.dirname, "../../../test-artifacts");

/** One frame at `t` seconds as 64×36 RGB pixels (colour, not grey: the emulator's takes differ in hue at one lightness). */
async function frame(file: string, t: number): Promise<Buffer> {
  const { stdout } = await promisify(execFile)(
    "ffmpeg",
    [
      "-v",
      "error",
      "-ss",
      t.toFixed(3),
      "-i",
      file,
      "-frames:v",
      "1",
      "-vf",
      "scale=64:36,format=rgb24",
      "-f",
      "rawvideo",
      "pipe:1",
    ],
    { encoding: "buffer" },
  );
  return stdout;
}
const diff = (a: Buffer, b: Buffer) => a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0) / a.length;

describe("hailuo review", () => {
  // Animatic renders: each roll of the same scene gets its own colours, so takes can be told apart.
  // Generations finish only once the page has seen them unfinished (a held clock), so a slow
  // machine cannot finish the run before the page is up.
  const held = heldClock();
  const fx = cliFixture({ progressLatencyMs: 1500, render: "animatic", clock: held.clock });

  it("shows a run live with its overview, picks take 2 of scene 2 by key, re-rolls scene 3 with an edited prompt, shows the film stale, assembles, and the film holds exactly those takes", async () => {
    const file = join(fx.dir, "story.yaml");
    await writeFile(
      file,
      `name: story\ndefaults: { takes: 2 }\nscenes:\n${[1, 2, 3, 4].map((n) => `  - id: s${n}\n    prompt: review scene ${n}\n`).join("")}assemble: true\nthumbnails: { preview: none }\n`,
    );
    const runDir = join(fx.dir, "story-run");
    const env = { FAL_EMULATOR_URL: fx.emu.url };
    const before = fx.emu.stats();
    expect(
      existsSync(CHROMIUM),
      `headless Chromium is needed at ${CHROMIUM}: run scripts/setup.sh --test`,
    ).toBe(true);
    // The browser is up before the run starts: its launch is not part of the race to see takes running.
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
    });
    let review: ReturnType<typeof cli> | undefined;
    let url = "";
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const problems: string[] = [];
      page.on("pageerror", (e) => problems.push(e.message));
      // A refused script (CSP), a missing favicon or file: the console says so.
      page.on("console", (m) => void (m.type() === "error" && problems.push(m.text())));
      page.on(
        "response",
        (r) => void (r.status() >= 400 && problems.push(`${r.status()} ${r.url()}`)),
      );
      page.on("dialog", (d) => {
        problems.push(`dialog: ${d.message()}`);
        void d.accept();
      });
      const run = cli(["run", file, "--out", runDir], env);
      await waitFor(() => existsSync(join(runDir, "run.json")), 20_000);
      review = cli(["review", runDir], env);
      const child = review.child;
      await waitFor(() => stdoutOf(child).includes("token="), 20_000);
      url = stdoutOf(child).trim();
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{32}$/);
      // The page is drawn on the server: its first paint already shows the takes.
      await page.goto(url, { waitUntil: "domcontentloaded" });
      const take = (scene: number, n: number) =>
        page.locator(`section[data-scene="s${scene}"] figure[data-take="${n}"]`);
      const section = (scene: number) => page.locator(`section[data-scene="s${scene}"]`);
      const isCurrent = async (scene: number) =>
        (await section(scene).getAttribute("class"))?.includes("current") === true;
      const classOf = async (scene: number, n: number) =>
        (await take(scene, n).getAttribute("class")) ?? "";
      // Live: takes are seen unfinished, then finished, with no reload.
      await waitFor(
        async () =>
          (await page
            .locator('figure[data-status="running"], figure[data-status="waiting"]')
            .count()) > 0,
        20_000,
      );
      held.release();
      await waitFor(
        async () => (await page.locator('figure[data-status="done"]').count()) === 8,
        60_000,
      );
      expect((await run.done).code).toBe(0);

      // Without the token every write is refused, and nothing changes.
      const base = new URL(url).origin;
      for (const path of ["/api/pick", "/api/reroll", "/api/assemble", "/api/quote"]) {
        const r = await fetch(`${base}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-hailuo-token": "0".repeat(32) },
          body: '{"scene":"s1","take":1}',
        });
        expect([path, r.status]).toEqual([path, 403]);
      }
      // And every read: the page, its state, its events and the run's files.
      for (const path of ["/", "/api/state", "/api/events", "/files/run.json"]) {
        const r = await fetch(`${base}${path}`);
        expect([path, r.status]).toEqual([path, 401]);
      }
      // The run went to an emulator: the page's money says nothing was billed.
      expect(await page.locator("#totals").textContent()).toMatch(
        /emulated, nothing billed \(\$\d+\.\d\d at fal's price\)/,
      );

      // The overview: one tile per scene with the picked take, its length, how the film enters
      // it, and the model that made it; the run's film (take 1 everywhere) is up to date.
      await expect
        .poll(() => page.locator("#film-status .film-state").textContent(), { timeout: 20_000 })
        .toMatch(/^The film is up to date/);
      const tiles = page.locator("a.tile");
      expect(await tiles.count()).toBe(4);
      expect(await tiles.nth(0).innerText()).toMatch(
        /^1 s1\ntake 1 · 6\.\d s\nstart\nHailuo 02 · t2v\nin the film$/,
      );
      expect(await tiles.nth(2).innerText()).toMatch(/^3 s3\ntake 1 · 6\.\d s\ncut in\n/);
      expect(await tiles.nth(1).locator("img").getAttribute("src")).toMatch(/^\/files\/thumbs\//);
      // Takes side by side: a scene's cards share one row.
      const tops = await section(1)
        .locator("figure")
        .evaluateAll((fs) => fs.map((f) => Math.round(f.getBoundingClientRect().top)));
      expect(new Set(tops).size).toBe(1);

      // Keys: the first scene is current; j goes to s2, 2 picks its take 2.
      expect(await isCurrent(1)).toBe(true);
      await page.keyboard.press("j");
      expect([await isCurrent(1), await isCurrent(2)]).toEqual([false, true]);
      await page.keyboard.press("2");
      await waitFor(async () => (await classOf(2, 2)).includes("chosen"), 10_000);
      // Picked is not in the film: the film still shows take 1 and says what an assemble changes.
      expect(await classOf(2, 1)).toContain("in-film");
      expect(await classOf(2, 2)).not.toContain("in-film");
      await expect
        .poll(() => page.locator("#film-status li").allTextContents(), { timeout: 10_000 })
        .toEqual(["s2: film uses take 1; assemble for take 2"]);

      const s3 = section(3);
      await s3.getByLabel("Prompt for a re-roll").fill("review scene 3, now under heavy snow");
      await s3.getByLabel("Takes").fill("1");
      await s3.locator("button.ask").click();
      await expect
        .poll(() => s3.locator("button.confirm").textContent(), { timeout: 10_000 })
        .toBe("Re-roll 1 take(s) for $0.27");
      await s3.locator("button.confirm").click();
      await waitFor(
        async () =>
          (await take(3, 3).getAttribute("data-status")) === "done" &&
          (await classOf(3, 3)).includes("chosen"),
        40_000,
      );
      expect(await take(3, 3).locator(".prompt").textContent()).toBe(
        "prompt: review scene 3, now under heavy snow",
      );
      await expect
        .poll(() => page.locator("#film-status li").allTextContents(), { timeout: 10_000 })
        .toEqual([
          "s2: film uses take 1; assemble for take 2",
          "s3: film uses take 1; assemble for take 3",
        ]);
      expect(await page.locator("a.tile.stale .tile-film").allTextContents()).toEqual([
        "film: take 1",
        "film: take 1",
      ]);
      // A tile jumps to its scene and makes it current; k goes back one.
      await tiles.nth(3).click();
      expect(await isCurrent(4)).toBe(true);
      const box = (await section(4).boundingBox())!;
      expect(box.y >= 0 && box.y < page.viewportSize()!.height, `s4 at ${box.y}`).toBe(true);
      await page.keyboard.press("k");
      expect(await isCurrent(3)).toBe(true);
      // The stale film, kept to look at: under the test's folder and in test-artifacts/.
      await page.evaluate("window.scrollTo(0, 0)");
      const shot = await page.screenshot({ path: join(fx.dir, "review-page.png"), fullPage: true });
      await mkdir(ARTIFACTS, { recursive: true });
      await writeFile(join(ARTIFACTS, "review-page.png"), shot);

      // The run made a film at its end (take 1 everywhere); the one button makes it again with the picks.
      expect(await page.locator("#chapters button").allTextContents()).toEqual([
        "s1 · take 1",
        "s2 · take 1",
        "s3 · take 1",
        "s4 · take 1",
      ]);
      await page.locator("#assemble").click();
      await expect
        .poll(() => page.locator("#chapters button").allTextContents(), { timeout: 40_000 })
        .toEqual(["s1 · take 1", "s2 · take 2", "s3 · take 3", "s4 · take 1"]);
      await expect
        .poll(() => page.locator("#film-status .film-state").textContent(), { timeout: 10_000 })
        .toMatch(/^The film is up to date/);
      expect(await classOf(2, 2)).toContain("in-film");
      // The chapter list seeks the film.
      await page.locator("#chapters button", { hasText: "s3" }).click();
      const film = JSON.parse(await readFile(join(runDir, "film.mp4.json"), "utf8")) as {
        chapters: { scene: string; take: number; file: string; startS: number }[];
      };
      const s3Start = film.chapters[2]!.startS;
      expect(
        await page
          .locator("#film-video")
          .evaluate((v) => (v as unknown as { currentTime: number }).currentTime),
      ).toBeCloseTo(s3Start, 1);

      // Without JavaScript the page is drawn all the same: the overview and every take.
      const bare = await browser.newPage({ javaScriptEnabled: false });
      await bare.goto(url);
      expect([
        await bare.locator("a.tile").count(),
        await bare.locator("figure.take").count(),
      ]).toEqual([4, 9]);
      expect(await bare.locator("#film-status .film-state").textContent()).toMatch(
        /^The film is up to date/,
      );
      await bare.close();
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
      if (review) {
        review.child.kill("SIGINT");
        // stderr, the stream logs keep, never shows the token.
        expect((await review.done).stderr).not.toContain(new URL(url).searchParams.get("token")!);
      }
    }

    // From the film itself: a second into scene 2 and scene 3 it shows the chosen takes' frames
    // (mean difference per colour value: < 2 is the same picture re-read, > 10 another one).
    const film = JSON.parse(await readFile(join(runDir, "film.mp4.json"), "utf8")) as {
      chapters: { scene: string; take: number; file: string; startS: number }[];
    };
    const report = JSON.parse(await readFile(join(runDir, "report.json"), "utf8")) as {
      items: { scene: string; take: number; file: string }[];
      totals: { billedUsd: number };
    };
    const clip = (scene: string, t: number) =>
      join(runDir, report.items.find((i) => i.scene === scene && i.take === t)!.file);
    for (const [scene, chosen, other] of [
      ["s2", 2, 1],
      ["s3", 3, 1],
    ] as const) {
      const at = film.chapters.find((c) => c.scene === scene)!.startS + 1;
      const inFilm = await frame(join(runDir, "film.mp4"), at);
      const mine = diff(inFilm, await frame(clip(scene, chosen), 1));
      const theirs = diff(inFilm, await frame(clip(scene, other), 1));
      expect(mine, `${scene} in the film matches take ${chosen}`).toBeLessThan(2);
      expect(theirs, `${scene} in the film is not take ${other}`).toBeGreaterThan(10);
    }
    // Money: one submit per scene-take (8, plus the re-roll's new input), the bill equals the report, every clip decodes.
    const after = fx.emu.stats();
    const fresh = Object.entries(after.submits.byInput)
      .filter(([k]) => !(k in before.submits.byInput))
      .map(([, n]) => n);
    expect(fresh.sort()).toEqual([1, 2, 2, 2, 2]);
    expect(after.billed.usd - before.billed.usd).toBeCloseTo(report.totals.billedUsd, 6);
    expect(report.totals.billedUsd).toBeCloseTo(9 * 0.27, 6);
    for (const i of report.items) expect(await decodeErrors(join(runDir, i.file))).toBe("");
  }, 150_000);
});
