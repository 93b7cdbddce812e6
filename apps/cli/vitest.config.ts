import { defineConfig } from "vitest/config";

// The CLI's test files spend most of their time waiting on child processes, the emulator's
// latencies and lock timeouts, not on the CPU: run them side by side. A minute per test leaves
// room for a cold machine (the emulator's renders not cached yet) without hiding a hang.
export default defineConfig({
  test: { testTimeout: 60_000, hookTimeout: 60_000, fileParallelism: true, maxWorkers: 3 },
});
