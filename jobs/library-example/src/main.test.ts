import { execFile } from "node:child_process";
import { mkdtemp, rm, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { startTestEmulator } from "@hailuo/test-utils";

it("runs as a user's script would (pointed at an emulator by FAL_EMULATOR_URL) and leaves two clips", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lib-example-"));
  const emu = await startTestEmulator({ render: "shared" });
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, FAL_EMULATOR_URL: emu.url };
    delete env.FAL_KEY;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [join(import.meta.dirname, "../dist/main.js"), dir],
      { env },
    );
    expect(stdout).toContain("emulator: nothing billed");
    expect((await readdir(dir)).sort()).toEqual(["clip-1.mp4", "clip-2.mp4"]);
    expect(emu.stats().billed.requests).toBe(2);
    const bare = { ...env };
    delete bare.FAL_EMULATOR_URL;
    const refused = await promisify(execFile)(
      process.execPath,
      [join(import.meta.dirname, "../dist/main.js"), dir],
      { env: bare },
    ).catch((e: { code: number; stderr: string }) => e);
    expect(refused).toMatchObject({ code: 2 });
  } finally {
    await emu.close();
    await rm(dir, { recursive: true, force: true });
  }
});
