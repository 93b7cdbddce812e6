import { testConfig } from "../../vitest.shared.mjs";

export default testConfig({ testTimeout: 60_000, hookTimeout: 60_000 });
