import { testConfig } from "../../vitest.shared.mjs";

// The CLI's test files spend most of their time waiting on child processes, the emulator's
// latencies and lock timeouts, not on the CPU: run them side by side. Two minutes per test leave
// room for a cold, loaded machine (the emulator's renders not cached, the other two test streams
// encoding films) without hiding a hang.
export default testConfig({
  testTimeout: 120_000,
  hookTimeout: 120_000,
  fileParallelism: true,
  maxWorkers: 3,
});
