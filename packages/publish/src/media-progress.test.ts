import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import type { Emulator } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import { makeTempDir, startTestEmulator } from "@hailuo/test-utils";
import { runManifest } from "@hailuo/runner";
import { runMediaStage } from "./index.js";

describe("media stage progress", () => {
  let emu: Emulator;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  beforeAll(async () => {
    emu = await startTestEmulator({ progressLatencyMs: 100, render: "shared" });
    tmp = await makeTempDir();
  });
  afterAll(async () => {
    await emu?.close();
    await tmp?.cleanup();
  });

  it("tells each step at its first moment (0 %), before any of its work is done", async () => {
    const manifest = parseManifest(
      "name: progress\nscenes:\n  - id: a\n    prompt: progress scene\nassemble: true\nthumbnails: { preview: none, sheet_columns: 0 }\n",
      { file: "progress.yaml" },
    );
    const client = createHailuoClient({ emulatorUrl: emu.url });
    expect((await runManifest({ manifest, runDir: tmp.dir, client })).exitCode).toBe(0);
    const told: [string, number][] = [];
    // One clip joins by stream copy, whose only report used to be its end: "film: started" at 100 %.
    const r = await runMediaStage(tmp.dir, manifest, { onProgress: (s, p) => told.push([s, p]) });
    expect(r.film?.mode).toBe("copy");
    const steps = [...new Set(told.map(([s]) => s))];
    expect(steps).toEqual(["thumbnails", "film"]);
    for (const step of steps) {
      const mine = told.filter(([s]) => s === step).map(([, p]) => p);
      expect([step, mine[0], mine.at(-1)]).toEqual([step, 0, 100]);
    }
  }, 30_000);
});
