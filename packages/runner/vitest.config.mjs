import { testConfig } from "../../vitest.shared.mjs";

// The money tests mostly wait on the emulator's latencies (about half a core busy with one file
// at a time): run three files side by side. Each test has its own emulator and run folder.
export default testConfig({ fileParallelism: true, maxWorkers: 3 });
