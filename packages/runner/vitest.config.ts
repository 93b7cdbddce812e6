import { defineConfig } from "vitest/config";

// The money tests mostly wait on the emulator's latencies (about half a core busy with one file
// at a time): run three files side by side. Each test has its own emulator and run folder.
export default defineConfig({
  test: { testTimeout: 30_000, hookTimeout: 30_000, fileParallelism: true, maxWorkers: 3 },
});
