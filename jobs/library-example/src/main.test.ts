import { execFile } from "node:child_process";
import { mkdtemp, rm, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";

it("runs as a user's script would and leaves two clips", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lib-example-"));
  try {
    const env = { ...process.env };
    delete env.FAL_KEY;
    delete env.FAL_EMULATOR_URL;
    const { stdout } = await promisify(execFile)(process.execPath, [join(import.meta.dirname, "../dist/main.js"), dir], { env });
    expect(stdout).toContain("emulator: nothing billed");
    expect((await readdir(dir)).sort()).toEqual(["clip-1.mp4", "clip-2.mp4"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
