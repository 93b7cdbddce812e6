import { describe, expect, it } from "vitest";
import { holdableClock, waitFor } from "@hailuo/test-utils";
import { readJournal, runManifest } from "./index.js";
import { board, expectMoneyFacts, runFixture } from "./test-money.js";

// A bucket run keeps its journal, run.json and picks in Redis. A Redis that restarts without
// persistence (or another Redis, or keys removed) loses them all, while the bucket still holds
// run.json's copy and every paid clip: the next run or resume must believe the bucket.
describe("a bucket run whose records Redis lost", () => {
  const fx = runFixture({}, "redis+s3");
  const loseRedis = async () => {
    const { client, keys } = fx.redis;
    await client.del(
      keys.log,
      keys.lease,
      keys.fence,
      keys.doc("run.json"),
      keys.doc("picks.json"),
    );
  };

  it("runs again into the bucket without paying for its clips again: each is adopted, confirmed on fal's request list", async () => {
    const manifest = board("redis-lost", 3);
    expect((await runManifest(fx.opts({ manifest }))).exitCode).toBe(0);
    await loseRedis();
    const warnings: string[] = [];
    const again = await runManifest(
      fx.opts({ manifest, onEvent: (e) => e.type === "warning" && warnings.push(e.message) }),
    );
    expect(again.exitCode).toBe(0);
    expect(
      warnings.filter((w) => w.includes("adopted the paid clip")),
      warnings.join("\n"),
    ).toHaveLength(3);
    expect(again.report.items.map((i) => i.status)).toEqual(["cached", "cached", "cached"]);
    expect(again.report.totals).toMatchObject({ billedRequests: 3, thisRunBilledUsd: 0 });
    await expectMoneyFacts(fx.emu, again.report, fx.run, { submitsPerTake: [1, 1, 1] });
  });

  it("a resume finds the run in the bucket's run.json; a generation in flight when Redis lost it is found on fal, not paid again", async () => {
    const held = holdableClock();
    await fx.restart({ clock: held.clock });
    const manifest = board("redis-lost-live", 2);
    // Both generations stay in progress on fal until the run was stopped and Redis lost it.
    held.hold();
    const stop = new AbortController();
    const run = runManifest(fx.opts({ manifest, signal: stop.signal }));
    await waitFor(
      async () =>
        (await readJournal(fx.run)).records.filter((r) => r.t === "submitted").length === 2,
    );
    stop.abort();
    expect((await run).exitCode).toBe(130);
    await loseRedis();
    held.release();
    const resumed = await runManifest(fx.opts());
    expect(resumed.exitCode).toBe(0);
    expect(resumed.report.totals).toMatchObject({
      reconciledSubmits: 2,
      possibleDoubleChargeUsd: 0,
    });
    await expectMoneyFacts(fx.emu, resumed.report, fx.run, { submitsPerTake: [1, 1] });
  });
});
