import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import type { Emulator, EmulatorOptions } from "@hailuo/emulator";
import { makeTempDir, startTestEmulator } from "@hailuo/test-utils";
import { removeAllQueues } from "./index.js";

/** The Redis every queue test uses (scripts/setup.sh --test starts one). */
export const REDIS = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/**
 * What a queue test file shares: an emulator (`options`), a temp folder, a Redis connection and a
 * key prefix of its own, all removed after the file's last test (the queues under the prefix too).
 */
export function queueFixture(name: string, options: EmulatorOptions = {}) {
  const prefix = `hailuo-${name}-${randomBytes(4).toString("hex")}`;
  let emu: Emulator | undefined;
  let tmp: Awaited<ReturnType<typeof makeTempDir>> | undefined;
  let redis: Redis | undefined;
  beforeAll(async () => {
    emu = await startTestEmulator({ render: "shared", ...options });
    tmp = await makeTempDir();
    redis = new Redis(REDIS, { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    await removeAllQueues({ redisUrl: REDIS, prefix });
    redis?.disconnect();
    await emu?.close();
    await tmp?.cleanup();
  });
  return {
    prefix,
    get emu(): Emulator {
      return emu!;
    },
    get dir(): string {
      return tmp!.dir;
    },
    get redis(): Redis {
      return redis!;
    },
  };
}
