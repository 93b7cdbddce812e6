import { execFile } from "node:child_process";
import { mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { decodeErrors, ffprobeFacts, holdableClock, waitFor } from "@hailuo/test-utils";
import { readJournal } from "@hailuo/runner";
import { cli, cliFixture, manifestText } from "./test-cli.js";

// The CLI where money is at stake: killed, interrupted, out of disk, refusing before it spends.
describe("hailuo CLI and money", () => {
  // A test that stops a run mid-way holds the emulator's clock until it has: a generation then
  // cannot finish first, however slow the machine. Released, each takes 1.2 s.
  const gate = holdableClock();
  const fx = cliFixture({ progressLatencyMs: 1200, clock: gate.clock });
  afterEach(() => gate.release());

  it("survives SIGKILL mid-run: resume finishes with every clip valid and one submit per scene-take", async () => {
    const file = join(fx.dir, "kill.yaml");
    await writeFile(file, manifestText(6, "kill"));
    const runDir = join(fx.dir, "kill-run");
    const before = fx.emu.stats();
    gate.hold();
    const first = cli(["run", file, "--out", runDir, "--concurrency", "2", "--no-media"], {
      FAL_EMULATOR_URL: fx.emu.url,
    });
    const journal = join(runDir, "journal.jsonl");
    // Kill while two requests are being generated and no submit is on the wire: the one window
    // no client can close (a submit sent but not yet journaled) is covered by the ambiguous-submit test.
    // The clock is held: both stay in progress until after the kill.
    await waitFor(async () => {
      const { records } = await readJournal(journal);
      const submitted = records.filter((r) => r.t === "submitted").length;
      return submitted >= 2 && submitted === records.filter((r) => r.t === "submitting").length;
    }, 30_000);
    first.child.kill("SIGKILL");
    const killed = await first.done;
    expect(killed.code).toBe(null);
    const { records } = await readJournal(journal);
    expect(records.filter((r) => r.t === "done").length).toBeLessThan(6);
    gate.release();

    // Straight after the kill: the dead process's run.lock goes stale in seconds and is taken over.
    const resumed = await cli(["resume", runDir, "--no-media"], { FAL_EMULATOR_URL: fx.emu.url })
      .done;
    expect(resumed.stderr).toContain("re-attached");
    expect(resumed.stderr).not.toContain("[locked]");
    expect(resumed.code).toBe(0);
    const report = JSON.parse(await readFile(join(runDir, "report.json"), "utf8"));
    expect(report.items).toHaveLength(6);
    for (const item of report.items) {
      expect(["done", "cached"]).toContain(item.status);
      const facts = await ffprobeFacts(join(runDir, item.file));
      expect(facts.durationS).toBeCloseTo(Number(item.duration), 1);
    }
    const after = fx.emu.stats();
    expect(after.submits.total - before.submits.total).toBe(6);
    const newInputs = Object.entries(after.submits.byInput).filter(
      ([k]) => !(k in before.submits.byInput),
    );
    expect(newInputs.map(([, n]) => n)).toEqual([1, 1, 1, 1, 1, 1]);
    // The bill equals the report, and every clip decodes completely.
    expect(after.billed.usd - before.billed.usd).toBeCloseTo(report.totals.billedUsd, 6);
    for (const item of report.items) expect(await decodeErrors(join(runDir, item.file))).toBe("");
  }, 90_000);

  it("on SIGINT stops, flushes the journal, says how to resume and exits 130", async () => {
    const file = join(fx.dir, "int.yaml");
    await writeFile(file, manifestText(6, "interrupt"));
    const runDir = join(fx.dir, "int-run");
    // Held: the run is still going when the signal comes.
    gate.hold();
    const p = cli(["run", file, "--out", runDir, "--cancel-on-exit", "--concurrency", "1"], {
      FAL_EMULATOR_URL: fx.emu.url,
    });
    await waitFor(
      async () =>
        (await readJournal(join(runDir, "journal.jsonl"))).records.some((r) => r.t === "submitted"),
      30_000,
    );
    p.child.kill("SIGINT");
    const r = await p.done;
    gate.release();
    expect(r.code).toBe(130);
    expect(r.stderr).toContain(`hailuo resume ${runDir}`);
    const { records } = await readJournal(join(runDir, "journal.jsonl"));
    expect(records.some((x) => x.t === "interrupted")).toBe(true);
    const status = await cli(["status", runDir]).done;
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/with a live request|not started/);
  }, 60_000);

  // A tmpfs stands in for a disk that fills up while the run downloads; mounting needs root (CI is root).
  it.skipIf(process.getuid?.() !== 0)(
    "a disk that fills up mid-run: stops naming the path and ending with the resume command; resume saves every paid clip, no new submit",
    async () => {
      const file = join(fx.dir, "full.yaml");
      await writeFile(file, manifestText(3, "fulldisk").replace(/duration: 10/g, "duration: 6"));
      const runDir = join(fx.dir, "full-run");
      const clips = join(runDir, "clips");
      await mkdir(clips, { recursive: true });
      await promisify(execFile)("mount", ["-t", "tmpfs", "-o", "size=24m", "tmpfs", clips]);
      try {
        // Requests left running by earlier tests finish (and bill) first, so this test's bill is its own.
        await waitFor(
          () => fx.emu.stats().completed >= fx.emu.stats().submits.total + fx.emu.stats().syncRuns,
          30_000,
        );
        const before = fx.emu.stats();
        // The first clip is generated and saved while the second stands still (held): the disk
        // fills with the run still going, however slow the machine.
        gate.hold();
        const p = cli(["run", file, "--out", runDir, "--concurrency", "1", "--no-media"], {
          FAL_EMULATOR_URL: fx.emu.url,
        });
        await waitFor(() => fx.emu.stats().submits.total === before.submits.total + 1, 30_000);
        gate.releaseParked();
        await waitFor(
          async () =>
            (await readJournal(join(runDir, "journal.jsonl"))).records.some((r) => r.t === "done"),
          30_000,
        );
        // Something else fills the disk: leave a few kilobytes.
        const { stdout } = await promisify(execFile)("df", ["--output=avail", "-B1", clips]);
        // (A download landing meanwhile may leave less than df said: the disk is then full anyway.)
        await writeFile(
          join(clips, "filler.bin"),
          Buffer.alloc(Math.max(0, Number(stdout.trim().split("\n").pop()) - 8192)),
        ).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== "ENOSPC") throw error;
        });
        gate.release();
        const stopped = await p.done;
        expect(stopped.code).toBe(1);
        expect(stopped.stderr).toContain("[disk_full]");
        expect(stopped.stderr).toContain(clips);
        expect(stopped.stderr.trim().split("\n").at(-1)).toBe(
          `every clip paid for so far is journaled (none is paid twice); fix the cause, then resume with: pnpm hailuo resume ${runDir}`,
        );
        await unlink(join(clips, "filler.bin"));
        const resumed = await cli(["resume", runDir, "--no-media"], {
          FAL_EMULATOR_URL: fx.emu.url,
        }).done;
        expect(resumed.code).toBe(0);
        const report = JSON.parse(await readFile(join(runDir, "report.json"), "utf8"));
        const after = fx.emu.stats();
        expect(after.submits.total - before.submits.total).toBe(3);
        expect(after.billed.usd - before.billed.usd).toBeCloseTo(report.totals.billedUsd, 6);
        for (const item of report.items)
          expect(await decodeErrors(join(runDir, item.file))).toBe("");
      } finally {
        await promisify(execFile)("umount", ["-l", clips]);
      }
    },
    60_000,
  );

  it("refuses before spending: no ffmpeg on the PATH, or a resume that would go to another backend (exit 2, nothing submitted)", async () => {
    const file = join(fx.dir, "pre.yaml");
    await writeFile(file, manifestText(2, "preflight"));
    const runDir = join(fx.dir, "pre-run");
    const before = fx.emu.stats().submits.total;
    // A PATH without ffmpeg and ffprobe (node itself is started by absolute path).
    const noFfmpeg = await cli(["run", file, "--out", runDir], {
      FAL_EMULATOR_URL: fx.emu.url,
      PATH: "/nonexistent",
      FFMPEG_PATH: undefined,
      FFPROBE_PATH: undefined,
    }).done;
    expect(noFfmpeg.code).toBe(2);
    expect(noFfmpeg.stderr).toContain("[preflight]");
    expect(noFfmpeg.stderr).toContain("ffmpeg/ffprobe not found");
    expect(fx.emu.stats().submits.total).toBe(before);

    expect(
      (
        await cli(["run", file, "--out", runDir, "--no-media"], { FAL_EMULATOR_URL: fx.emu.url })
          .done
      ).code,
    ).toBe(0);
    const elsewhere = await cli(["resume", runDir, "--no-media"], { FAL_EMULATOR_URL: undefined })
      .done;
    expect(elsewhere.code).toBe(2);
    expect(elsewhere.stderr).toContain(`[wrong_backend]`);
    expect(elsewhere.stderr).toContain(`set FAL_EMULATOR_URL=${fx.emu.url}`);
    expect(fx.emu.stats().submits.total).toBe(before + 2);
  }, 60_000);
});
