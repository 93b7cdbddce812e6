import { describe, expect, it } from "vitest";
import { RunTally, clock } from "./run-tally.js";

describe("RunTally (what the live view's header says)", () => {
  it("counts phases, sums what was billed and estimates the time left from the pace so far", () => {
    let now = 0;
    const t = new RunTally(() => now);
    t.add({
      type: "plan",
      runDir: "r",
      items: 4,
      unique: 4,
      cached: 1,
      reattach: 0,
      toSubmit: 3,
      estimateUsd: 0.81,
    });
    for (const s of ["a", "b", "c", "d"])
      t.add({ type: "item", key: s, sceneId: s, take: 1, phase: "waiting" });
    t.add({ type: "item", key: "a", sceneId: "a", take: 1, phase: "cached" });
    t.add({ type: "item", key: "b", sceneId: "b", take: 1, phase: "submitting" });
    t.add({ type: "item", key: "c", sceneId: "c", take: 1, phase: "queued", queuePosition: 3 });
    expect(t.header()).toBe(
      "1/4 done · 2 running · 1 waiting · $0.00 of $0.81 billed · 0:00 elapsed, ETA —",
    );
    expect(t.running().map((r) => [r.id, r.phase, r.where])).toEqual([
      ["b#1", "submitting", ""],
      ["c#1", "queued", " (position 3)"],
    ]);
    now = 30_000;
    t.add({ type: "billed", key: "b", sceneId: "b", take: 1, requestId: "q1", usd: 0.27 });
    t.add({ type: "item", key: "b", sceneId: "b", take: 1, phase: "done" });
    // One of three finished in 30 s: two left at that pace is a minute.
    expect(t.header()).toBe(
      "2/4 done · 1 running · 1 waiting · $0.27 of $0.81 billed · 0:30 elapsed, ETA 1:00",
    );
    expect(
      t.add({
        type: "item",
        key: "c",
        sceneId: "c",
        take: 1,
        phase: "failed",
        detail: "content_policy: refused",
      }),
    ).toBe("c#1 failed: content_policy: refused");
    expect(t.header()).toBe(
      "2/4 done · 1 waiting · 1 failed · $0.27 of $0.81 billed · 0:30 elapsed, ETA 0:15",
    );
  });

  it("formats durations as m:ss, and h:mm:ss past an hour", () => {
    expect([clock(0), clock(59_400), clock(61_000), clock(3_725_000)]).toEqual([
      "0:00",
      "0:59",
      "1:01",
      "1:02:05",
    ]);
  });
});
