import { execFileSync } from "node:child_process";
import { copyFile, open, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { inputHash } from "@hailuo/emulator";
import { planRun, readRunManifest } from "@hailuo/runner";
import { decodeErrors } from "@hailuo/test-utils";
import { cli, cliFixture } from "./test-cli.js";
import { expectDocumented } from "./test-events.js";

// Issue 21: a clip changed on disk (replaced by another scene's clip, or rotted with its size and
// time intact) never goes into the film; status and assemble name it; resume fetches it again.
describe("hailuo status and assemble check the clips", () => {
  const fx = cliFixture({ progressLatencyMs: 200, render: "animatic" });
  const env = () => ({ FAL_EMULATOR_URL: fx.emu.url });

  it("a swapped clip and a rotted one: status names them, assemble refuses, resume downloads them again with no new submit", async () => {
    const file = join(fx.dir, "swap.yaml");
    await writeFile(
      file,
      "name: swap\nassemble: {}\nthumbnails: { preview: none }\nscenes:\n  - id: s0\n    prompt: a red door opens\n    duration: 6\n  - id: s1\n    prompt: a blue boat leaves\n    duration: 6\n",
    );
    const runDir = join(fx.dir, "swap-run");
    const before = fx.emu.stats();
    expect((await cli(["run", file, "--out", runDir], env()).done).code).toBe(0);
    const clipsDir = join(runDir, "clips");
    const [c0, c1] = (await readdir(clipsDir)).filter((f) => f.endsWith(".mp4")).sort();
    const film = join(runDir, "film.mp4");
    const filmBefore = (await stat(film)).mtimeMs;

    // s0's clip replaced by s1's.
    await copyFile(join(clipsDir, c1!), join(clipsDir, c0!));
    const status = await cli(["status", runDir]).done;
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(
      new RegExp(`s0#1 +changed .*clips/${c0} +changed on disk: replaced`),
    );
    expect(status.stdout).toContain(
      `1 clip has changed on disk since its download: \`hailuo resume ${runDir}\``,
    );
    const json = await cli(["status", runDir, "--json"]).done;
    expect(expectDocumented(json.stdout)[0]).toMatchObject({
      changedClips: [
        { file: `clips/${c0}`, standing: expect.stringMatching(/^(resized|mismatch)$/) },
      ],
    });
    const refused = await cli(["assemble", runDir]).done;
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("[clip_changed]");
    expect(refused.stderr).toContain(`s0 take 1: clips/${c0} is replaced`);
    expect(refused.stderr).toContain(`hailuo resume ${runDir}`);
    expect((await stat(film)).mtimeMs).toBe(filmBefore);
    expect((await cli(["resume", runDir], env()).done).code).toBe(0);

    // s1's clip rots: one byte flips, size and modification time stay.
    const rotten = join(clipsDir, c1!);
    const stamp = execFileSync("stat", ["-c", "%y", rotten], { encoding: "utf8" }).trim();
    const { size } = await stat(rotten);
    const h = await open(rotten, "r+");
    const byte = Buffer.alloc(1);
    await h.read(byte, 0, 1, size - 100);
    await h.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, size - 100);
    await h.close();
    execFileSync("touch", ["-m", "-d", stamp, rotten]);
    // A stat cannot see it; the film (a new process hashes every clip) and --verify do.
    expect((await cli(["status", runDir]).done).code).toBe(0);
    const rotFilm = await cli(["assemble", runDir]).done;
    expect([rotFilm.code, rotFilm.stderr]).toEqual([
      1,
      expect.stringContaining(`s1 take 1: clips/${c1} is replaced or corrupted (sha256 differs`),
    ]);
    const verified = await cli(["status", runDir, "--verify"]).done;
    expect(verified.stdout).toMatch(
      new RegExp(`s1#1 +failed .*paid for, not saved: clips/${c1} is replaced or corrupted`),
    );
    const resumed = await cli(["resume", runDir], env()).done;
    expect(resumed.code).toBe(0);
    expect((await cli(["status", runDir, "--verify"]).done).code).toBe(0);

    // The money facts: one submit per scene-take, the bill equal to the report, every clip and the film decoding.
    const after = fx.emu.stats();
    const plan = planRun(await readRunManifest(runDir));
    expect(plan.map((p) => after.submits.byInput[inputHash(p.input)] ?? 0)).toEqual([1, 1]);
    expect(after.downloads - before.downloads).toBe(4);
    const report = JSON.parse(await readFile(join(runDir, "report.json"), "utf8")) as {
      totals: { billedUsd: number };
    };
    expect(after.billed.usd - before.billed.usd).toBeCloseTo(report.totals.billedUsd, 6);
    for (const f of [join(clipsDir, c0!), rotten, film])
      expect({ f, errors: await decodeErrors(f) }).toEqual({ f, errors: "" });
  }, 120_000);
});
