import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import type { Emulator } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import { probe } from "@hailuo/media";
import { makeTempDir, startTestEmulator } from "@hailuo/test-utils";
import { runManifest } from "@hailuo/runner";
import { runMediaStage } from "./index.js";

// A real run against the emulator, then real ffmpeg, then the page in real headless Chromium
// (Debian's chromium, installed by scripts/setup.sh --test).
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = resolve(import.meta.dirname, "../../../test-artifacts");

const manifest = parseManifest(
  `name: "Media <b>&</b> stage"
scenes:
  - id: one
    prompt: "First scene <script>alert(1)</script>"
  - id: two
    prompt: Second scene, it fails the first time
    duration: 10
    transition: cut
  - id: three
    prompt: Third scene
assemble:
  transition: fade:0.5
thumbnails:
  sheet_columns: 3
  preview: gif
`,
  { file: "media.yaml" },
);

describe("media stage", () => {
  let emu: Emulator;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  beforeAll(async () => {
    emu = await startTestEmulator({ slots: 1, render: "shared" });
    tmp = await makeTempDir();
  });
  afterAll(async () => {
    await emu.close();
    await tmp.cleanup();
  });

  it("skips a failed scene (or shows a placeholder), then picks up the clip after a resume", async () => {
    emu.setFaults({ generationErrorWords: ["fails the first time"] });
    const client = createHailuoClient({ emulatorUrl: emu.url });
    // "two" fails on every try until the fault is lifted.
    const first = await runManifest({
      manifest,
      runDir: tmp.dir,
      client,
      concurrency: 1,
      retries: 1,
      retryBaseDelayMs: 10,
    });
    expect(first.report.items.map((i) => i.status)).toEqual(["done", "failed", "done"]);
    const warnings: string[] = [];
    // These films are checked for length and parts, not picture quality: the quickest encode.
    const skipped = await runMediaStage(tmp.dir, manifest, {
      onWarning: (w) => warnings.push(w),
      preset: "ultrafast",
    });
    expect(skipped.skipped).toEqual(["two"]);
    expect(warnings[0]).toMatch(/^two: no clip/);
    // one (6) + three (6) with the default 0.5 s fade: 11.5 s.
    expect((await probe(join(tmp.dir, "film.mp4"))).durationS).toBeCloseTo(11.5, 1);

    const withCard = await runMediaStage(tmp.dir, manifest, {
      placeholders: true,
      preset: "ultrafast",
    });
    // 6 + 10 (card) + 6 − 0.5 (fade into the card; "two" cuts to the next scene) = 21.5 s
    expect(withCard.film?.durationS).toBeCloseTo(21.5, 1);

    emu.setFaults({});
    const resumed = await runManifest({ manifest, runDir: tmp.dir, client, retryBaseDelayMs: 10 });
    expect(resumed.report.items.map((i) => i.status)).toEqual(["cached", "done", "cached"]);
    const full = await runMediaStage(tmp.dir, manifest, { preset: "ultrafast" });
    expect(full.skipped).toEqual([]);
    // 6 + 10 + 6 − 0.5 = 21.5 s, now with the real clip.
    expect(full.film?.durationS).toBeCloseTo(21.5, 1);
    expect(full.film?.mode).toBe("reencode");
    const sheet = await probe(join(tmp.dir, "contact-sheet.jpg")).catch(() => undefined);
    expect(sheet?.width).toBe(3 * 320 + 4 * 8);
    expect(Object.keys(full.previews)).toHaveLength(3);
  }, 120_000);

  it("writes an escaped, offline index.html that loads in headless Chromium without console errors", async () => {
    const html = await readFile(join(tmp.dir, "index.html"), "utf8");
    expect(html).toContain("First scene &lt;script&gt;alert(1)&lt;/script&gt;");
    expect(html).toContain("<title>Media &lt;b&gt;&amp;&lt;/b&gt; stage — hailuo run</title>");
    expect(html).not.toMatch(/https?:\/\//);
    expect(
      existsSync(CHROMIUM),
      `headless Chromium is needed at ${CHROMIUM}: run scripts/setup.sh --test`,
    ).toBe(true);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
      page.on("pageerror", (e) => problems.push(e.message));
      page.on("dialog", (d) => {
        problems.push(`dialog: ${d.message()}`);
        void d.dismiss();
      });
      await page.goto(pathToFileURL(join(tmp.dir, "index.html")).href, { waitUntil: "load" });
      expect(await page.locator("article.scene").count()).toBe(3);
      expect(await page.locator("section.film video").count()).toBe(1);
      expect(await page.locator("article.scene video").count()).toBe(3);
      // Every poster and the contact sheet actually load from file://.
      // Runs in the page; typed loosely because this package compiles without the DOM library.
      const broken = await page.$$eval("img", (imgs) =>
        Promise.all(
          imgs.map((el) => {
            const i = el as unknown as {
              complete: boolean;
              naturalWidth: number;
              src: string;
              onload: unknown;
              onerror: unknown;
            };
            return i.complete
              ? i
              : new Promise<typeof i>((r) => (i.onload = i.onerror = () => r(i)));
          }),
        ).then((all) => all.filter((i) => i.naturalWidth === 0).map((i) => i.src)),
      );
      expect(broken).toEqual([]);
      expect(await page.locator("article.scene >> nth=0 >> .prompt").textContent()).toBe(
        "First scene <script>alert(1)</script>",
      );
      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, "run-report.png"), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
