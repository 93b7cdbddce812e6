import { defineConfig } from "vitest/config";

// The CLI's test files spend most of their time waiting on child processes, the emulator's
// latencies and lock timeouts, not on the CPU: run them side by side.
export default defineConfig({ test: { testTimeout: 30_000, hookTimeout: 30_000, fileParallelism: true, maxWorkers: 3 } });
