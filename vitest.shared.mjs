// Plain JavaScript, loaded by Node itself (`vitest run --configLoader native`): bundling each
// package's TypeScript config cost vitest a rolldown worker and ~1.5 s of CPU per package.
import { defineConfig } from "vitest/config";

/**
 * A package's vitest config: 30 s per test and hook unless it says otherwise, and one module graph
 * per worker (`isolate: false`). Loading @fal-ai/client, the emulator, playwright and the
 * packages anew for every test file was a third of the suite's CPU (the runner's tests: 50 s of
 * CPU isolated, 28 s not). It holds because no test leans on module state: each makes its own
 * emulator, folders, clients and servers, and closes them.
 * @param {import("vitest/node").TestUserConfig} [test]
 */
export function testConfig(test = {}) {
  return defineConfig({
    test: { testTimeout: 30_000, hookTimeout: 30_000, isolate: false, ...test },
  });
}
