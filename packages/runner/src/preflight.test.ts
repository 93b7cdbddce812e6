import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseManifest } from "@hailuo/manifest";
import { makeTempDir } from "@hailuo/test-utils";
import { planRun } from "./plan.js";
import { preflight } from "./preflight.js";

// Preflight is the last moment before money is spent: what the film relies on must hold here.
const run = promisify(execFile);
let tmp: Awaited<ReturnType<typeof makeTempDir>>;
beforeAll(async () => {
  tmp = await makeTempDir();
  await mkdir(join(tmp.dir, "run", "clips"), { recursive: true });
  await run("mkfifo", [join(tmp.dir, "bed.fifo")]);
  await mkdir(join(tmp.dir, "bed-dir"));
  await writeFile(join(tmp.dir, "notes.mp3"), "not audio\n");
  await run(process.env.FFMPEG_PATH || "ffmpeg", [
    "-v",
    "error",
    "-f",
    "lavfi",
    "-i",
    "sine=d=1",
    join(tmp.dir, "bed.m4a"),
  ]);
});
afterAll(() => tmp.cleanup());

/** Preflight of a one-scene manifest whose film has `bed` as its audio bed. */
function check(bed: string): Promise<void> {
  const m = parseManifest(
    `name: bed\nscenes:\n  - prompt: a cat\nassemble:\n  audio: { file: "${bed}" }\n`,
    { file: join(tmp.dir, "m.yaml") },
  );
  return preflight(join(tmp.dir, "run"), m, planRun(m));
}

describe("preflight of the audio bed", () => {
  it.each([
    ["a FIFO (never opened: that would hang)", "bed.fifo", /is a FIFO/],
    ["a directory", "bed-dir", /is a directory/],
    ["a device", "/dev/zero", /is a device/],
    ["a file that is not audio", "notes.mp3", /no audio stream/],
  ])("refuses %s", async (_what, bed, why) => {
    const error = await check(bed).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "preflight" });
    expect((error as Error).message).toMatch(why);
    expect((error as Error).message).toContain("assemble.audio.file in");
  });

  it("passes a readable audio file", async () => {
    await expect(check("bed.m4a")).resolves.toBeUndefined();
  });
});
