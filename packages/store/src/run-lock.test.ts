import { mkdir, utimes } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeTempDir } from "@hailuo/test-utils";
import { acquireRunLock, runLockHeld } from "./local-store.js";

describe("run.lock", () => {
  it("two processes racing for one folder: exactly one wins, every time", async () => {
    const tmp = await makeTempDir();
    try {
      for (let round = 0; round < 40; round++) {
        const results = await Promise.allSettled([
          acquireRunLock(tmp.dir, { noWait: true }),
          acquireRunLock(tmp.dir, { noWait: true }),
        ]);
        const won = results.filter(
          (r): r is PromiseFulfilledResult<() => Promise<void>> => r.status === "fulfilled",
        );
        expect(won).toHaveLength(1);
        expect(results.find((r) => r.status === "rejected")).toMatchObject({
          reason: { code: "locked" },
        });
        expect(await runLockHeld(tmp.dir)).toBe(true);
        await won[0]!.value();
        expect(await runLockHeld(tmp.dir)).toBe(false);
      }
    } finally {
      await tmp.cleanup();
    }
  });

  it("a lock left by a crashed process (no longer refreshed) is taken over; a fresh one is refused without waiting", async () => {
    const tmp = await makeTempDir();
    try {
      const lock = join(tmp.dir, "run.lock");
      await mkdir(lock);
      await expect(acquireRunLock(tmp.dir, { noWait: true })).rejects.toMatchObject({
        code: "locked",
      });
      const old = new Date(Date.now() - 60_000);
      await utimes(lock, old, old);
      const release = await acquireRunLock(tmp.dir, { noWait: true });
      await release();
    } finally {
      await tmp.cleanup();
    }
  });
});
