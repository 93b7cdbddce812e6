import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { chromium } from "playwright-core";
import { describe, expect, it } from "vitest";
import { decodeErrors, waitFor } from "@hailuo/test-utils";
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
  const fx = cliFixture({ progressLatencyMs: 1500, render: "animatic" });

  it("shows a run live, picks take 2 of scene 2, re-rolls scene 3 with an edited prompt, assembles, and the film holds exactly those takes", async () => {
    const file = join(fx.dir, "story.yaml");
    await writeFile(
      file,
      `name: story\ndefaults: { takes: 2 }\nscenes:\n${[1, 2, 3, 4].map((n) => `  - id: s${n}\n    prompt: review scene ${n}\n`).join("")}assemble: true\nthumbnails: { preview: none }\n`,
    );
    const runDir = join(fx.dir, "story-run");
    const env = { FAL_EMULATOR_URL: fx.emu.url };
    const before = fx.emu.stats();
    const run = cli(["run", file, "--out", runDir], env);
    await waitFor(() => existsSync(join(runDir, "run.json")), 20_000);
    const review = cli(["review", runDir], env);
    await waitFor(() => stdoutOf(review.child).includes("token="), 20_000);
    const url = stdoutOf(review.child).trim();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{32}$/);

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

    expect(
      existsSync(CHROMIUM),
      `headless Chromium is needed at ${CHROMIUM}: run scripts/setup.sh --test`,
    ).toBe(true);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const problems: string[] = [];
      page.on("pageerror", (e) => problems.push(e.message));
      page.on("dialog", (d) => {
        problems.push(`dialog: ${d.message()}`);
        void d.accept();
      });
      await page.goto(url);
      const take = (scene: number, n: number) =>
        page.locator(`section[data-scene="s${scene}"] figure[data-take="${n}"]`);
      // Live: takes are seen unfinished, then finished, with no reload.
      await waitFor(
        async () =>
          (await page
            .locator('figure[data-status="running"], figure[data-status="waiting"]')
            .count()) > 0,
        20_000,
      );
      await waitFor(
        async () => (await page.locator('figure[data-status="done"]').count()) === 8,
        60_000,
      );
      expect((await run.done).code).toBe(0);
      // The run went to an emulator: the page's money says nothing was billed.
      expect(await page.locator("#totals").textContent()).toMatch(
        /emulated, nothing billed \(\$\d+\.\d\d at fal's price\)/,
      );

      await take(2, 2).locator("button.pick").click();
      await waitFor(
        async () => (await take(2, 2).getAttribute("class"))?.includes("chosen") === true,
        10_000,
      );

      const s3 = page.locator('section[data-scene="s3"]');
      await s3.locator("textarea").fill("review scene 3, now under heavy snow");
      await s3.locator("button.ask").click();
      await expect
        .poll(() => s3.locator("button.confirm").textContent(), { timeout: 10_000 })
        .toBe("Re-roll 1 take(s) for $0.27");
      await s3.locator("button.confirm").click();
      await waitFor(
        async () =>
          (await take(3, 3).getAttribute("data-status")) === "done" &&
          (await take(3, 3).getAttribute("class"))?.includes("chosen") === true,
        40_000,
      );
      expect(await take(3, 3).locator(".prompt").textContent()).toBe(
        "prompt: review scene 3, now under heavy snow",
      );

      // The run made a film at its end (take 1 everywhere); the button makes it again with the choices.
      await expect
        .poll(() => page.locator("#chapters button").allTextContents(), { timeout: 10_000 })
        .toEqual(["s1 · take 1", "s2 · take 1", "s3 · take 1", "s4 · take 1"]);
      await page.locator("#assemble").click();
      await expect
        .poll(() => page.locator("#chapters button").allTextContents(), { timeout: 40_000 })
        .toEqual(["s1 · take 1", "s2 · take 2", "s3 · take 3", "s4 · take 1"]);
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
      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, "review-page.png"), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
      review.child.kill("SIGINT");
      // stderr, the stream logs keep, never shows the token.
      expect((await review.done).stderr).not.toContain(new URL(url).searchParams.get("token")!);
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
