import { testConfig } from "../../vitest.shared.js";

export default testConfig({ testTimeout: 60_000, hookTimeout: 60_000 });
