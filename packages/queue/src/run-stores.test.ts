import { existsSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeTempDir, waitFor } from "@hailuo/test-utils";
import { createRunStores, runAddress } from "./run-stores.js";
import { queueFixture } from "./test-queue.js";

describe("a worker's run stores", () => {
  const fx = queueFixture("stores");

  it("a bucket run's files are made in a scratch folder of the process, removed when it is done", async () => {
    const tmp = await makeTempDir();
    try {
      // A folder left by a process that is gone (pid 2^22 + 1 is above Linux's pid_max).
      const dead = join(tmp.dir, "hailuo-scratch-4194305-deadbeef");
      await mkdir(join(dead, "run"), { recursive: true });
      const stores = createRunStores({ redis: fx.redis, keyPrefix: fx.prefix, tempRoot: tmp.dir });
      await waitFor(() => !existsSync(dead));
      const store = stores.of("s3://bucket-one/team/run1/");
      expect(store.kind).toBe("redis+s3");
      expect(store.url).toBe("s3://bucket-one/team/run1");
      expect(stores.of("s3://bucket-one/team/run1")).toBe(store);
      await mkdir(join(store.dir, "clips"), { recursive: true });
      await writeFile(join(store.dir, "clips", "a.mp4"), "x");
      await stores.forget("s3://bucket-one/team/run1");
      expect(existsSync(store.dir)).toBe(false);
      await stores.close();
      expect(await readdir(tmp.dir)).toEqual([]);
    } finally {
      await tmp.cleanup();
    }
  });

  it("a folder run is the folder itself, never removed", async () => {
    const stores = createRunStores({ redis: fx.redis, keyPrefix: fx.prefix });
    const store = stores.of(runAddress(fx.dir));
    expect(store.kind).toBe("local");
    expect(store.dir).toBe(fx.dir);
    await stores.forget(fx.dir);
    await stores.close();
    expect(existsSync(fx.dir)).toBe(true);
  });
});
