import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { seededRandom } from "@hailuo/emulator";
import { decodeErrors, makeTempDir, startTestEmulator } from "@hailuo/test-utils";

// The built CLI as a real process, SIGKILLed at random moments and resumed, over and over,
// against an emulator with faults (kept in this test process, so its bill survives the kills).
const BIN = join(import.meta.dirname, "../dist/bin.js");
const SCENES = 36;
const KILLS = 10;

function start(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [BIN, ...args], {
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, stderr })),
  );
  return { child, done };
}

describe("crash loop", () => {
  it(`SIGKILL at random points (0.5–2.6 s) ${KILLS} times with faults, resume each time: every clip present, each billed once`, async () => {
    const seed = Number(process.env.CRASH_SEED ?? 20261124);
    const random = seededRandom(seed);
    const emu = await startTestEmulator({
      render: "shared",
      slots: 2,
      progressLatencyMs: 1500,
      seed,
      faults: {
        rules: [
          { route: "submit", kind: 429, rate: 0.1 },
          { route: "status", kind: 502, rate: 0.1 },
          { route: "stream", kind: 503, rate: 0.1 },
          { route: "result", kind: 503, rate: 0.1 },
        ],
        generationErrorRate: 0.1,
      },
    });
    const tmp = await makeTempDir();
    try {
      const file = join(tmp.dir, "loop.yaml");
      await writeFile(
        file,
        `name: loop\nscenes:\n${Array.from({ length: SCENES }, (_, i) => `  - id: s${i}\n    prompt: crash loop scene ${i}\n`).join("")}`,
      );
      const runDir = join(tmp.dir, "run");
      const env: NodeJS.ProcessEnv = { ...process.env, FAL_EMULATOR_URL: emu.url };
      delete env.FAL_KEY;
      let kills = 0;
      // Cycles that ended by themselves before their kill, with their last words: a failure says why.
      const ended: string[] = [];
      let last: { code: number | null; stderr: string } | undefined;
      for (let cycle = 0; cycle < KILLS + 10; cycle++) {
        // Killed before it recorded run.json (a slow start under load), a run has submitted nothing
        // and is not a run folder yet: as a user would, start it again instead of resuming it.
        const started = existsSync(join(runDir, "run.json"));
        const p = start(
          started
            ? ["resume", runDir, "--no-media", "--concurrency", "2"]
            : ["run", file, "--out", runDir, "--no-media", "--concurrency", "2"],
          env,
        );
        if (kills < KILLS) {
          // Ten kills of at most 2.6 s each (26 s) cannot outlast the least time the emulator needs for
          // the whole run (36 scenes, 2 slots, 1.5 s each: 27 s): every kill lands on an unfinished
          // run, whatever the seed and however fast the CLI resumes.
          const afterMs = 500 + random() * 2100;
          const timer = setTimeout(() => p.child.kill("SIGKILL"), afterMs);
          last = await p.done;
          clearTimeout(timer);
          if (last.code === null) {
            kills++;
            continue;
          }
        } else last = await p.done;
        if (last.code === 0) break;
        ended.push(
          `cycle ${cycle} exited ${last.code}: ${last.stderr.trim().split("\n").slice(-3).join(" | ")}`,
        );
      }
      expect(kills, `seed ${seed}; ${ended.join("; ")}`).toBe(KILLS);
      expect(last?.code, last?.stderr).toBe(0);

      const report = JSON.parse(await readFile(join(runDir, "report.json"), "utf8"));
      expect(
        report.items
          .map((i: { status: string }) => i.status)
          .filter((s: string) => s !== "done" && s !== "cached"),
      ).toEqual([]);
      // Every clip on disk decodes completely, one per scene-take (no partial files left).
      const clips = (await readdir(join(runDir, "clips"))).sort();
      expect(clips).toEqual(
        report.items.map((i: { file: string }) => i.file.replace("clips/", "")).sort(),
      );
      for (const c of clips) expect(await decodeErrors(join(runDir, "clips", c))).toBe("");
      // Wait for orphaned requests (sent just before a kill, never journaled) to finish on the emulator.
      const until = Date.now() + 30_000;
      while (emu.stats().completed < emu.stats().submits.total && Date.now() < until)
        await new Promise((r) => setTimeout(r, 50));
      const s = emu.stats();
      const t = report.totals;
      // Submits: one per scene-take, plus failed generations (free), plus flagged ambiguous ones only.
      expect(s.submits.total - SCENES - s.failedGenerations).toBeLessThanOrEqual(
        report.ambiguousSubmits.length,
      );
      expect(s.submits.total).toBeGreaterThanOrEqual(SCENES + s.failedGenerations);
      // The bill: exactly what the report says was billed, plus requests it flagged and could not see.
      const orphans = s.billed.requests - t.billedRequests;
      expect(orphans).toBeGreaterThanOrEqual(0);
      expect(orphans).toBeLessThanOrEqual(report.ambiguousSubmits.length);
      expect(s.billed.usd).toBeCloseTo(t.billedUsd + 0.27 * orphans, 6);
      expect(t.billedRequests).toBe(SCENES);
      console.log(
        `crash loop (seed ${seed}): ${kills} kills, ${s.submits.total} submits for ${SCENES} scenes (${s.failedGenerations} failed generations, ${report.ambiguousSubmits.length} flagged, ${t.reconciledSubmits} reconciled), billed $${s.billed.usd} = reported $${t.billedUsd} + ${orphans} orphan(s)`,
      );
    } finally {
      await emu.close();
      await tmp.cleanup();
    }
  }, 170_000);
});
