import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { makeTempDir } from "@hailuo/test-utils";

// Manifest parsing is pure: loading the package must not pull in fal's client (or our core).
describe("@hailuo/manifest's imports", () => {
  it("loads no module of @fal-ai/client or @hailuo/core", async () => {
    const tmp = await makeTempDir();
    try {
      const hooks = join(tmp.dir, "hooks.mjs");
      await writeFile(
        hooks,
        `export async function resolve(specifier, context, next) {\n  const r = await next(specifier, context);\n  process.stderr.write("LOADED " + r.url + "\\n");\n  return r;\n}\n`,
      );
      const register = join(tmp.dir, "register.mjs");
      await writeFile(
        register,
        `import { register } from "node:module";\nregister(${JSON.stringify(`file://${hooks}`)});\n`,
      );
      const { stderr } = await promisify(execFile)(
        process.execPath,
        ["--import", register, "--input-type=module", "-e", `await import("@hailuo/manifest");`],
        { cwd: join(import.meta.dirname, "..") },
      );
      const loaded = stderr
        .split("\n")
        .filter((l) => l.startsWith("LOADED "))
        .map((l) => l.slice(7));
      expect(loaded.some((u) => u.includes("/manifest/dist/"))).toBe(true);
      expect(loaded.filter((u) => /@fal-ai|\/core\/dist\//.test(u))).toEqual([]);
    } finally {
      await tmp.cleanup();
    }
  });
});
