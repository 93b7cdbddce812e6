import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { heldClock, waitFor } from "@hailuo/test-utils";
import { cli, cliFixture } from "./test-cli.js";
import { ptyRun } from "./test-pty.js";

// A real pseudo-terminal (util-linux `script`) and a headless xterm that draws what the CLI
// printed: the test sees the screen and the scrollback a person would see.
describe("the live view on a terminal", () => {
  // Clips finish only once the screen has shown them running (a held clock).
  const held = heldClock();
  const fx = cliFixture({ progressLatencyMs: 1200, clock: held.clock });

  it("keeps a header with counts, money, elapsed and ETA, shows every running clip, cuts rows to the width and leaves no copies behind", async () => {
    const dir = join(fx.dir, "live");
    await mkdir(dir, { recursive: true });
    // Ids long enough that a row would wrap at 80 columns if it were not cut.
    const id = (i: number) => `scene-${i}-${"x".repeat(70)}`;
    const manifest = join(dir, "m.yaml");
    await writeFile(
      manifest,
      `name: live\nscenes:\n${Array.from({ length: 6 }, (_, i) => `  - id: ${id(i)}\n    prompt: live view scene ${i}\n`).join("")}assemble: true\nthumbnails: { preview: none }\n`,
    );
    const run = ptyRun(["run", manifest, "--out", join(dir, "run"), "--concurrency", "3"], {
      FAL_EMULATOR_URL: fx.emu.url,
    });

    // While clips are in flight: the header and the running rows are on screen. Held, the run
    // settles with three clips out (two generating, one queued on the emulator's two slots).
    let screen: string[] = [];
    await waitFor(async () => {
      screen = await run.screen();
      return (
        screen.some((l) => / 3 running/.test(l) && /elapsed/.test(l)) &&
        screen.filter((l) => /in_progress|queued/.test(l)).length === 3
      );
    }, 20_000);
    held.release();
    const header = screen.find((l) => /elapsed/.test(l))!;
    expect(header).toMatch(
      /^\d\/6 done · \d running( · \d waiting)? · \$\d\.\d\d\/\$1\.62 emulated · \d:\d\d elapsed, ETA (—|\d:\d\d)$/,
    );
    // Every running clip has its row, cut to the width.
    const rows = screen.filter((l) =>
      /^\S (in_progress|queued|submitting|downloading)( \(position \d+\))? +scene-\d-x+/.test(l),
    );
    expect(rows).toHaveLength(3);
    for (const r of rows) expect(r.length).toBeLessThanOrEqual(79);

    expect(await run.done).toBe(0);
    const all = await run.lines();
    // The redrawn header left exactly one copy (the final one), and it did not wrap.
    const b = run.term.buffer.active;
    const at = all.findIndex((l) => /elapsed/.test(l));
    expect(b.getLine(at + 1)!.isWrapped).toBe(false);
    expect(all.filter((l) => /elapsed/.test(l))).toEqual([
      expect.stringMatching(/^6\/6 done · \$1\.62\/\$1\.62 emulated · \d:\d\d elapsed, ETA 0:00$/),
    ]);
    // Finished clips collapse into the counts: no row of a done clip stays in the scrollback.
    expect(all.filter((l) => /scene-\d-x/.test(l))).toEqual([]);
    // One updating line per media step, left as one "✔ step" line each; never a line per percent.
    expect(all.filter((l) => /\d+%/.test(l) && /film|thumbnails/.test(l))).toEqual([]);
    expect(all.filter((l) => l.startsWith("✔ film"))).toHaveLength(1);
    expect(all.some((l) => l.startsWith("film: "))).toBe(true);
  });

  it("asks before a billed run above the amount (no means nothing submitted, exit 2); --yes and a non-terminal never ask", async () => {
    const dir = join(fx.dir, "ask");
    await mkdir(dir, { recursive: true });
    const manifest = join(dir, "m.yaml");
    // 4 × 10 s = $1.80, above the default $1. fal.ai cannot be reached from here (mock-free: a real
    // key would go there), so a confirmed run stops at its first submits with "unreachable".
    await writeFile(
      manifest,
      `name: ask\ndefaults: { duration: 10 }\nscenes:\n${[0, 1, 2, 3].map((i) => `  - prompt: billed scene ${i}\n`).join("")}`,
    );
    const env = { FAL_KEY: "fake-key-id:fake-secret", FAL_EMULATOR_URL: undefined };
    const asked = ptyRun(["run", manifest, "--out", join(dir, "no"), "--no-media"], env);
    await waitFor(async () => (await asked.screen()).some((l) => l.includes("[y/N]")), 20_000);
    expect((await asked.screen()).find((l) => l.includes("[y/N]"))).toContain(
      "spend up to $1.80 on fal.ai for 4 clip(s)?",
    );
    asked.type("n\r");
    expect(await asked.done).toBe(2);
    expect((await asked.lines()).join("\n")).toContain("[declined]");
    const journal = await readFile(join(dir, "no", "journal.jsonl"), "utf8");
    expect(journal).not.toContain('"t":"submitting"');

    const [yes, piped] = await Promise.all([
      ptyRun(["run", manifest, "--out", join(dir, "yes"), "--no-media", "--yes"], env).done,
      cli(["run", manifest, "--out", join(dir, "piped"), "--no-media"], env).done,
    ]);
    // Both went on to submit (and met an unreachable fal): neither asked (a question on the
    // terminal would have waited for an answer that never comes).
    expect(yes).toBe(1);
    expect([
      piped.code,
      piped.stderr.includes("[y/N]"),
      piped.stderr.includes("[unreachable]"),
    ]).toEqual([1, false, true]);
  });
});
