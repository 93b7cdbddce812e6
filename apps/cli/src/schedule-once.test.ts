import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "@hailuo/emulator";
import { readHistory } from "@hailuo/scheduler";
import {
  decodeErrors,
  holdableClock,
  makeTempDir,
  startTestEmulator,
  waitFor,
} from "@hailuo/test-utils";
import { cli } from "./test-cli.js";

// `hailuo schedule --once` while another process runs the same job: refused, exit 2, naming the
// holder. The emulator's timers are held so the first run is still going when the second asks.
describe("hailuo schedule --once during a run of the job", () => {
  let emu: Emulator;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  const gate = holdableClock();
  beforeAll(async () => {
    emu = await startTestEmulator({ clock: gate.clock, render: "shared" });
    tmp = await makeTempDir();
  });
  afterAll(async () => {
    await emu.close();
    await tmp.cleanup();
  });

  it("is refused with exit 2 and the holder's pid; nothing is submitted; the first run's money adds up", async () => {
    const jobs = join(tmp.dir, "jobs");
    await mkdir(join(jobs, "hourly"), { recursive: true });
    await writeFile(
      join(jobs, "hourly", "job.yaml"),
      `schedule: "0 * * * *"\noutput: ../../out\nmanifest:\n  name: hourly\n  scenes:\n    - { prompt: "Once an hour", duration: 6 }\n`,
    );
    const env = { FAL_EMULATOR_URL: emu.url };
    const billedBefore = emu.stats().billed.usd;
    gate.hold();
    const first = cli(["schedule", jobs, "--once", "hourly"], env);
    await waitFor(() => emu.stats().submits.total === 1, 30_000);

    const second = await cli(["schedule", jobs, "--once", "hourly"], env).done;
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(
      new RegExp(`hourly: skipped: still running \\(pid ${first.child.pid}, fired \\S+\\)\\n$`),
    );
    expect(emu.stats().submits.total).toBe(1);

    gate.release();
    const done = await first.done;
    expect(done.code).toBe(0);
    const outputRoot = join(tmp.dir, "out");
    const history = await readHistory(outputRoot);
    expect(history.map((h) => h.status).sort()).toEqual(["ok", "skipped", "started"]);
    const runDirs = (await readdir(outputRoot)).filter((d) => d.endsWith("-manual"));
    expect(runDirs).toHaveLength(1);
    const report = JSON.parse(
      await readFile(join(outputRoot, runDirs[0]!, "report.json"), "utf8"),
    ) as { totals: { billedUsd: number }; items: { file: string }[] };
    // One submit for the one scene-take, the bill equals the report, the clip decodes.
    expect(Object.values(emu.stats().submits.byInput)).toEqual([1]);
    expect(emu.stats().billed.usd - billedBefore).toBeCloseTo(report.totals.billedUsd, 6);
    for (const item of report.items)
      expect(await decodeErrors(join(outputRoot, runDirs[0]!, item.file))).toBe("");
  });
});
