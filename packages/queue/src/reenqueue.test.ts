import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import { inputHash } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import { planRun, readJournal, runManifest } from "@hailuo/runner";
import { decodeErrors, waitFor } from "@hailuo/test-utils";
import { enqueueRun, startWorker } from "./index.js";
import { REDIS, queueFixture } from "./test-queue.js";

describe("a distributed run enqueued again after it ended", () => {
  const fx = queueFixture("reenqueue");

  it("is refused (its new scenes would be paid and never reported); one process carries it on", async () => {
    const tag = randomBytes(3).toString("hex");
    const board = (n: number) =>
      parseManifest(
        `name: again\nscenes:\n${Array.from({ length: n }, (_, i) => `  - prompt: again ${tag} ${i}\n`).join("")}`,
        { file: "again.yaml" },
      );
    const runDir = join(fx.dir, `again-${tag}`);
    const client = createHailuoClient({ emulatorUrl: fx.emu.url });
    const worker = await startWorker({ redisUrl: REDIS, prefix: fx.prefix, client });
    try {
      await enqueueRun({ manifest: board(2), runDir, redisUrl: REDIS, prefix: fx.prefix });
      await waitFor(
        async () =>
          (await readJournal(join(runDir, "journal.jsonl"))).records.some(
            (r) => r.t === "finished",
          ),
        30_000,
      );
    } finally {
      await worker.close();
    }
    const submits = fx.emu.stats().submits.total;
    const again = enqueueRun({ manifest: board(3), runDir, redisUrl: REDIS, prefix: fx.prefix });
    await expect(again).rejects.toMatchObject({ code: "usage" });
    expect(fx.emu.stats().submits.total, "nothing submitted").toBe(submits);
    // The scene added is made by one process, the two before reused.
    const result = await runManifest({ manifest: board(3), runDir, client });
    expect(result.report.items.map((i) => i.status)).toEqual(["cached", "cached", "done"]);
    expect(
      planRun(board(3)).map((p) => fx.emu.stats().submits.byInput[inputHash(p.input)] ?? 0),
      "submits per scene-take",
    ).toEqual([1, 1, 1]);
    expect(fx.emu.stats().billed.usd, "billed = reported").toBeCloseTo(
      result.report.totals.billedUsd,
      6,
    );
    for (const i of result.report.items)
      expect(await decodeErrors(join(runDir, i.file ?? "")), i.scene).toBe("");
  }, 60_000);
});
