import { execFile } from "node:child_process";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { chromium } from "playwright-core";
import { describe, expect, it } from "vitest";
import type { Emulator } from "@hailuo/emulator";
import { decodeErrors, waitFor } from "@hailuo/test-utils";
import { cli, cliFixture } from "./test-cli.js";

// Where money meets the media stage: what the film relies on is checked before paying, a run
// folder on another filesystem, a page rewritten after the film, an assemble that is killed.
const run = promisify(execFile);
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const root = process.getuid?.() === 0;

/** A manifest of `n` six-second scenes whose prompts carry `tag` (unique inputs per test). */
const scenes = (tag: string, n: number, extra = "") =>
  `name: ${tag}\n${extra}scenes:\n${Array.from({ length: n }, (_, i) => `  - id: s${i}\n    prompt: ${tag} scene ${i}\n    duration: 6\n`).join("")}`;

/**
 * The three money facts: one submit per scene-take (`takes` per scene: takes of a scene share
 * their input), the emulator's bill equals the report, every clip decodes.
 */
async function moneyFacts(
  emu: Emulator,
  before: ReturnType<Emulator["stats"]>,
  runDir: string,
  scenes: number,
  takes = 1,
): Promise<void> {
  const after = emu.stats();
  const report = JSON.parse(await readFile(join(runDir, "report.json"), "utf8")) as {
    items: { file: string }[];
    totals: { billedUsd: number };
  };
  const newInputs = Object.entries(after.submits.byInput).filter(
    ([k]) => !(k in before.submits.byInput),
  );
  expect(newInputs.map(([, n]) => n)).toEqual(Array.from({ length: scenes }, () => takes));
  expect(after.submits.total - before.submits.total).toBe(scenes * takes);
  expect(after.billed.usd - before.billed.usd).toBeCloseTo(report.totals.billedUsd, 6);
  for (const item of report.items) expect(await decodeErrors(join(runDir, item.file))).toBe("");
}

/** Live (not zombie) processes whose command line mentions `text`. */
async function liveProcesses(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir("/proc")).filter((p) => /^\d+$/.test(p))) {
    const [cmd, stat] = await Promise.all([
      readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => ""),
      readFile(`/proc/${pid}/stat`, "utf8").catch(() => ""),
    ]);
    if (cmd.includes(text) && !/\) Z /.test(stat)) found.push(cmd.replaceAll("\0", " "));
  }
  return found;
}

/** This package's scratch folders left in a folder. */
const scratch = async (dir: string) =>
  (await readdir(dir)).filter((n) => /hailuo-(sheet|concat)-|\.tmp/.test(n));

describe("hailuo and the media stage at its edges", () => {
  const fx = cliFixture({ progressLatencyMs: 100 });

  it("refuses an audio bed that is a FIFO, a device, a directory or not audio: exit 2, nothing submitted", async () => {
    const fifo = join(fx.dir, "bed.fifo");
    await run("mkfifo", [fifo]);
    await mkdir(join(fx.dir, "bed-dir"));
    await writeFile(join(fx.dir, "bed.txt"), "not audio\n");
    const before = fx.emu.stats().submits.total;
    for (const [bed, why] of [
      ["/dev/zero", "is a device"],
      [join(fx.dir, "bed-dir"), "is a directory"],
      [join(fx.dir, "bed.txt"), "no audio stream"],
      [fifo, "is a FIFO"],
    ] as const) {
      const file = join(fx.dir, "bed.yaml");
      await writeFile(file, scenes("badbed", 2, `assemble:\n  audio: { file: "${bed}" }\n`));
      const r = await cli(["run", file, "--out", join(fx.dir, "bed-run")], {
        FAL_EMULATOR_URL: fx.emu.url,
      }).done;
      expect(r.stderr).toContain("[preflight]");
      expect(r.stderr).toContain(why);
      expect(r.code).toBe(2);
    }
    expect(fx.emu.stats().submits.total - before).toBe(0);
  }, 120_000);

  // A tmpfs as the run folder is another filesystem than the temp folder; mounting needs root (CI is root).
  it.skipIf(!root)(
    "a run folder on another filesystem than the temp folder gets its contact sheet pages, film and page",
    async () => {
      const file = join(fx.dir, "xdev.yaml");
      // One tile a row: 26 clips make two pages (as 101 would at the default 4 columns).
      await writeFile(
        file,
        scenes(
          "xdev",
          26,
          "thumbnails: { sheet_columns: 1, preview: none }\nassemble: { transition: cut }\n",
        ),
      );
      const runDir = join(fx.dir, "xdev-run");
      const tmpDir = join(fx.dir, "xdev-tmp");
      await mkdir(runDir);
      await mkdir(tmpDir);
      await run("mount", ["-t", "tmpfs", "-o", "size=200m", "tmpfs", runDir]);
      try {
        const before = fx.emu.stats();
        const r = await cli(["run", file, "--out", runDir, "--concurrency", "2"], {
          FAL_EMULATOR_URL: fx.emu.url,
          TMPDIR: tmpDir,
        }).done;
        expect(r.stderr).not.toContain("EXDEV");
        expect(r.code).toBe(0);
        const files = await readdir(runDir);
        expect(files).toEqual(
          expect.arrayContaining([
            "contact-sheet.jpg",
            "contact-sheet-2.jpg",
            "film.mp4",
            "index.html",
          ]),
        );
        expect(await scratch(runDir)).toEqual([]);
        expect(await scratch(tmpDir)).toEqual([]);
        await moneyFacts(fx.emu, before, runDir, 26);
      } finally {
        await run("umount", ["-l", runDir]);
      }
    },
    120_000,
  );

  it("hailuo report keeps showing the film while it is up to date, and leaves it off once a pick makes it stale", async () => {
    const file = join(fx.dir, "rep.yaml");
    await writeFile(
      file,
      scenes(
        "keepfilm",
        2,
        "assemble: { transition: cut }\ndefaults: { takes: 2 }\nthumbnails: { preview: none }\n",
      ),
    );
    const runDir = join(fx.dir, "rep-run");
    const before = fx.emu.stats();
    expect(
      (
        await cli(["run", file, "--out", runDir, "--concurrency", "2"], {
          FAL_EMULATOR_URL: fx.emu.url,
        }).done
      ).code,
    ).toBe(0);
    const film = JSON.parse(await readFile(join(runDir, "film.mp4.json"), "utf8")) as {
      durationS: number;
    };
    const report = await cli(["report", runDir]).done;
    expect(report.code).toBe(0);
    expect(await readFile(join(runDir, "index.html"), "utf8")).toContain('class="film"');
    // In a real browser: the rewritten page's film plays the film on disk.
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`file://${join(runDir, "index.html")}`);
      const shown = await page.locator(".film video").evaluate((el) => {
        const v = el as unknown as {
          readyState: number;
          duration: number;
          addEventListener(t: string, f: () => void, o: object): void;
        };
        return new Promise<number>((done) =>
          v.readyState >= 1
            ? done(v.duration)
            : v.addEventListener("loadedmetadata", () => done(v.duration), { once: true }),
        );
      });
      expect(shown).toBeCloseTo(film.durationS, 1);
    } finally {
      await browser.close();
    }
    // Take 2 of s0 chosen after the film was made: the film no longer shows what the run would use.
    expect((await cli(["pick", runDir, "s0", "2"]).done).code).toBe(0);
    expect((await cli(["report", runDir]).done).code).toBe(0);
    expect(await readFile(join(runDir, "index.html"), "utf8")).not.toContain('class="film"');
    await moneyFacts(fx.emu, before, runDir, 2, 2);
  }, 90_000);

  // One paid run serves every kill below (made by whichever test comes first; its money facts checked then).
  let clipsRun: Promise<string> | undefined;
  const runToAssemble = () =>
    (clipsRun ??= (async () => {
      const file = join(fx.dir, "kill.yaml");
      await writeFile(file, scenes("killasm", 4));
      const runDir = join(fx.dir, "kill-run");
      const before = fx.emu.stats();
      expect(
        (
          await cli(["run", file, "--out", runDir, "--concurrency", "2", "--no-media"], {
            FAL_EMULATOR_URL: fx.emu.url,
          }).done
        ).code,
      ).toBe(0);
      await moneyFacts(fx.emu, before, runDir, 4);
      return runDir;
    })());

  it.each([
    ["SIGINT", 1],
    ["SIGINT", 2],
    ["SIGTERM", 1],
    ["SIGTERM", 2],
  ] as const)(
    "an assemble killed by %s (%i×) leaves no ffmpeg running and no scratch folder",
    async (signal, times) => {
      const runDir = await runToAssemble();
      const tmpDir = join(fx.dir, `kill-${signal}-${times}-tmp`);
      await mkdir(tmpDir);
      const billed = fx.emu.stats().billed.usd;
      const p = cli(["assemble", runDir, "--transition", "fade:0.5", "--preset", "veryslow"], {
        TMPDIR: tmpDir,
      });
      let stderr = "";
      p.child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      // Killed while the film's pieces are being encoded.
      await waitFor(
        async () =>
          (await liveProcesses(runDir)).some((c) => c.startsWith("ffmpeg") && c.includes("fade")),
        30_000,
      );
      p.child.kill(signal);
      if (times === 2) {
        // The second signal once the first is being handled: the CLI then exits at once.
        await waitFor(
          () => p.child.exitCode !== null || stderr.includes("received, stopping"),
          10_000,
        );
        p.child.kill(signal);
      }
      const r = await p.done;
      // 130, or ended by a second signal that came after the CLI had stopped listening for signals.
      expect(r.code === 130 || (r.code === null && times === 2)).toBe(true);
      await waitFor(async () => (await liveProcesses(runDir)).length === 0, 5_000);
      expect(await scratch(runDir)).toEqual([]);
      expect(await scratch(tmpDir)).toEqual([]);
      // Assembling spends nothing, and the paid clips are untouched.
      expect(fx.emu.stats().billed.usd).toBe(billed);
      for (const clip of await readdir(join(runDir, "clips")))
        expect(await decodeErrors(join(runDir, "clips", clip))).toBe("");
    },
    60_000,
  );
});
