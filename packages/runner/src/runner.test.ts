import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { readFile, readdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import type { Emulator } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import {
  startTestEmulator,
  makeTempDir,
  ffprobeFacts,
  heldClock,
  waitFor,
  decodeErrors,
} from "@hailuo/test-utils";
import {
  JournalStore,
  planRun,
  readJournal,
  runManifest,
  type RunEvent,
  type RunOptions,
} from "./index.js";

// In-process runs against a real emulator over HTTP; clips are real MP4s checked with ffprobe.

const storyboard = (extra = "") =>
  parseManifest(
    `name: test-board
scenes:
  - id: a
    prompt: A quiet forest clearing at noon
  - id: b
    prompt: Rain on a window, slow drops
    duration: 10
  - id: c
    prompt: A cat stretches in the sun
    takes: 2
  - id: d
    prompt: A quiet forest clearing at noon
${extra}`,
    { file: "board.yaml" },
  );

describe("runManifest", () => {
  let emu: Emulator;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  beforeAll(async () => {
    emu = await startTestEmulator({ slots: 2, render: "shared" });
  });
  afterAll(() => emu.close());
  beforeEach(async () => {
    tmp = await makeTempDir();
  });
  afterEach(() => tmp.cleanup());

  const opts = (o: Partial<RunOptions> = {}): RunOptions => ({
    manifest: storyboard(),
    runDir: tmp.dir,
    client: createHailuoClient({ emulatorUrl: emu.url }),
    retryBaseDelayMs: 10,
    ...o,
  });

  it("generates every scene-take once, reuses identical inputs, verifies clips and writes reports", async () => {
    const before = emu.stats().submits.total;
    const events: RunEvent[] = [];
    const result = await runManifest(opts({ onEvent: (e) => events.push(e) }));
    expect(result.exitCode).toBe(0);
    // a, b, c#1, c#2; d has a's input and reuses its clip.
    expect(emu.stats().submits.total - before).toBe(4);
    expect(result.report.items.map((i) => [i.scene, i.take, i.status])).toEqual([
      ["a", 1, "done"],
      ["b", 1, "done"],
      ["c", 1, "done"],
      ["c", 2, "done"],
      ["d", 1, "done"],
    ]);
    expect(result.report.items[4]).toMatchObject({
      sameAs: "a#1",
      costUsd: 0,
      file: result.report.items[0]!.file,
    });
    expect(result.report.totals.billedUsd).toBeCloseTo(0.27 * 3 + 0.45, 6);
    const b = result.report.items[1]!;
    const facts = await ffprobeFacts(join(tmp.dir, b.file!));
    // The shared card's size: the seed's 1366×768 is the emulator's own test's to check.
    expect(facts).toMatchObject({ width: 320, height: 180, frames: 240 });
    expect(b.seconds).toBeCloseTo(10, 1);
    expect(events[0]).toMatchObject({
      type: "plan",
      items: 5,
      unique: 4,
      toSubmit: 4,
      estimateUsd: 1.26,
    });
    const csv = await readFile(join(tmp.dir, "report.csv"), "utf8");
    expect(csv.split("\n")[0]).toBe(
      "scene,take,status,request_id,attempts,seconds,cost_usd,possible_double_charge_usd,file,error,prompt",
    );
    const { records } = await readJournal(join(tmp.dir, "journal.jsonl"));
    // The request id is journaled before waiting on it.
    for (const done of records.filter((r) => r.t === "done")) {
      const submitted = records.findIndex((r) => r.t === "submitted" && r.key === done.key);
      const completed = records.findIndex((r) => r.t === "completed" && r.key === done.key);
      expect(submitted).toBeGreaterThanOrEqual(0);
      expect(submitted).toBeLessThan(completed);
    }

    // Same manifest again: nothing submitted.
    const again = await runManifest(opts());
    expect(emu.stats().submits.total - before).toBe(4);
    expect(again.report.items.map((i) => i.status)).toEqual([
      "cached",
      "cached",
      "cached",
      "cached",
      "cached",
    ]);
    expect(again.report.totals.thisRunBilledUsd).toBe(0);

    // Edit one scene: only it is generated; the old paid clip stays on disk.
    const edited = parseManifest(
      `name: test-board\nscenes:\n  - id: a\n    prompt: A quiet forest clearing at dusk\n  - id: b\n    prompt: Rain on a window, slow drops\n    duration: 10\n`,
      { file: "board.yaml" },
    );
    const third = await runManifest(opts({ manifest: edited }));
    expect(emu.stats().submits.total - before).toBe(5);
    expect(third.report.items.map((i) => i.status)).toEqual(["done", "cached"]);
    expect((await readdir(join(tmp.dir, "clips"))).length).toBe(5);

    // A deleted clip is downloaded again from its journaled URL, without a new submit.
    await unlink(join(tmp.dir, third.report.items[1]!.file!));
    const fourth = await runManifest(opts({ manifest: edited }));
    expect(fourth.report.items.map((i) => i.status)).toEqual(["cached", "done"]);
    expect(emu.stats().submits.total - before).toBe(5);
  });

  it("looks up a submit journaled without its answer (a crash in between): one fal's request list never saw is no possible charge", async () => {
    const manifest = parseManifest(
      `name: crash\nscenes:\n  - id: only\n    prompt: crashed between send and journal\n`,
      { file: "c.yaml" },
    );
    const [item] = planRun(manifest);
    const journal = await JournalStore.open(join(tmp.dir, "journal.jsonl"));
    await journal.append({ t: "submitting", key: item!.key, scene: "only", take: 1, attempt: 1 });
    await journal.close();
    const result = await runManifest(opts({ manifest }));
    // The emulator never received it: fal's list, read on resume, shows it was not queued.
    // (Where the list cannot be read it stays flagged: the 403 money tests.)
    expect(result.report.items[0]).toMatchObject({
      status: "done",
      ambiguousSubmits: 0,
      possibleDoubleChargeUsd: 0,
    });
    expect(result.report.totals.possibleDoubleChargeUsd).toBe(0);
  });

  it("refuses to start past the budget, with zero submits", async () => {
    const before = emu.stats().submits.total;
    await expect(runManifest(opts({ budgetUsd: 1 }))).rejects.toMatchObject({ code: "budget" });
    expect(emu.stats().submits.total).toBe(before);
  });

  it("stops submitting once spent + in flight would pass the budget", async () => {
    const big = parseManifest(
      `name: big\nscenes:\n${Array.from({ length: 6 }, (_, i) => `  - prompt: budget scene ${i}\n`).join("")}`,
      { file: "big.yaml" },
    );
    // Exactly enough: the plan fits and every scene is generated.
    const result = await runManifest(opts({ manifest: big, budgetUsd: 1.62 }));
    expect(result.report.totals.done).toBe(6);
    const tight = parseManifest(
      `name: tight\nscenes:\n${Array.from({ length: 3 }, (_, i) => `  - prompt: tight scene ${i}\n`).join("")}`,
      { file: "t.yaml" },
    );
    const t2 = await makeTempDir();
    // fal's request list cannot be read with this key, so a lost answer stays a possible charge (and
    // its pricing API neither: the price is given, as --price would).
    const blind = await startTestEmulator({
      slots: 2,
      render: "shared",
      platformApi: "forbidden",
      faults: { rules: [{ route: "submit", kind: "drop", count: 1 }] },
    });
    try {
      // One submit answer is lost: it may have been billed, so it counts against the budget and
      // the third scene no longer fits in $0.81.
      const r = await runManifest(
        opts({
          manifest: tight,
          runDir: t2.dir,
          budgetUsd: 0.81,
          priceUsdPerSecond: 0.045,
          concurrency: 1,
          client: createHailuoClient({ emulatorUrl: blind.url }),
        }),
      );
      expect(r.report.items.map((i) => i.status).sort()).toEqual(["done", "done", "failed"]);
      expect(r.report.items.find((i) => i.status === "failed")?.errorCode).toBe("budget");
      expect(r.report.totals.possibleDoubleChargeUsd).toBeCloseTo(0.27, 6);
      expect(r.exitCode).toBe(1);
    } finally {
      await blind.close();
      await t2.cleanup();
    }
  });
});

describe("runManifest under faults", () => {
  it("completes through 429/5xx/dropped answers, fails a content-policy scene once, retries failed generations", async () => {
    const emu = await startTestEmulator({
      render: "shared",
      seed: 7,
      faults: {
        rules: [
          { route: "submit", kind: 429, rate: 0.3 },
          { route: "submit", kind: 503, rate: 0.2 },
          { route: "submit", kind: "drop", count: 1 },
          { route: "status", kind: 502, rate: 0.2 },
          { route: "stream", kind: 503, rate: 0.3 },
          { route: "result", kind: 503, rate: 0.3 },
          { route: "result", kind: 500, count: 1 },
        ],
        generationErrorCount: 1,
        policyWords: ["forbidden"],
      },
    });
    const tmp = await makeTempDir();
    try {
      const manifest = parseManifest(
        `name: faults\nscenes:\n${Array.from({ length: 8 }, (_, i) => `  - id: s${i}\n    prompt: fault scene ${i}\n`).join("")}  - id: bad\n    prompt: something forbidden\n`,
        { file: "faults.yaml" },
      );
      const result = await runManifest({
        manifest,
        runDir: tmp.dir,
        client: createHailuoClient({ emulatorUrl: emu.url }),
        retryBaseDelayMs: 10,
        retries: 5,
        waitMode: "stream",
      });
      const byScene = Object.fromEntries(result.report.items.map((i) => [i.scene, i]));
      for (let i = 0; i < 8; i++) expect(byScene[`s${i}`]?.status).toBe("done");
      // Only a submit that never became a request (flagged ambiguous: a 503 or a lost answer; or
      // refused: 429s past the client's own re-sends) may add an attempt; the policy failure itself
      // is never retried.
      const { records } = await readJournal(join(tmp.dir, "journal.jsonl"));
      const refusedBad = records.filter(
        (r) => r.t === "refused" && r.key === byScene.bad!.key,
      ).length;
      // Counted in the journal: the report flags only those fal's request list cannot explain.
      const ambiguousBad = records.filter(
        (r) => r.t === "ambiguous" && r.key === byScene.bad!.key,
      ).length;
      expect(byScene.bad).toMatchObject({
        status: "failed",
        errorCode: "content_policy",
        attempts: 1 + ambiguousBad + refusedBad,
      });
      expect(result.exitCode).toBe(1);
      const stats = emu.stats();
      expect(stats.failedGenerations).toBe(1);
      expect(Object.keys(stats.faultsInjected).length).toBeGreaterThan(2);
      // The policy prompt was submitted exactly once: no retry of a permanent error.
      expect(records.filter((r) => r.t === "submitting" && r.scene === "bad")).toHaveLength(
        1 + ambiguousBad + refusedBad,
      );
      // Extra submits come only from the failed generation and from flagged ambiguous submits (a
      // 503 or a lost answer on submit may have been queued, so each one is flagged with its cost).
      const ambiguous = records.filter((r) => r.t === "ambiguous").length;
      const queuedButLost = stats.faultsInjected["submit:drop"] ?? 0;
      expect(stats.submits.total - 9).toBe(stats.failedGenerations + queuedButLost);
      expect(queuedButLost).toBeLessThanOrEqual(ambiguous);
      // …unless fal's request list, read before the next submit, explained it: found there (and
      // re-attached), or shown never to have been queued.
      const explained = records.reduce(
        (n, r) => n + (r.t === "unfound" ? r.lost : r.t === "reconciled" && !r.twin ? 1 : 0),
        0,
      );
      expect(result.report.totals.possibleDoubleChargeUsd).toBeCloseTo(
        0.27 * (ambiguous - explained),
        6,
      );
      // The bill: exactly the report's billed total, plus the lost answers fal did queue (and ran).
      expect(stats.billed.usd).toBeCloseTo(
        result.report.totals.billedUsd + 0.27 * queuedButLost,
        6,
      );
      expect(result.report.totals.billedUsd).toBeCloseTo(0.27 * 8, 6);
      for (const i of result.report.items.filter((x) => x.file))
        expect(await decodeErrors(join(tmp.dir, i.file!))).toBe("");

      // Resuming the finished run submits nothing new, and does not retry the policy failure.
      const total = stats.submits.total;
      emu.setFaults({ policyWords: ["forbidden"] });
      const again = await runManifest({
        manifest,
        runDir: tmp.dir,
        client: createHailuoClient({ emulatorUrl: emu.url }),
        retryBaseDelayMs: 10,
      });
      expect(emu.stats().submits.total).toBe(total);
      expect(again.report.items.find((i) => i.scene === "bad")?.status).toBe("failed");
    } finally {
      await emu.close();
      await tmp.cleanup();
    }
  }, 120_000);

  it("on interrupt cancels only queued requests; resume re-attaches the running one and submits the cancelled ones again", async () => {
    // Held until the interrupt is over: a finishes only then, so b and c are still queued.
    const held = heldClock();
    const emu = await startTestEmulator({
      render: "shared",
      slots: 1,
      progressLatencyMs: 1500,
      clock: held.clock,
    });
    const tmp = await makeTempDir();
    try {
      const manifest = parseManifest(
        `name: cancel\nscenes:\n  - id: a\n    prompt: cancel test a\n  - id: b\n    prompt: cancel test b\n  - id: c\n    prompt: cancel test c\n`,
        { file: "c.yaml" },
      );
      const client = createHailuoClient({ emulatorUrl: emu.url });
      const ac = new AbortController();
      const phases: string[] = [];
      const run = runManifest({
        manifest,
        runDir: tmp.dir,
        client,
        concurrency: 3,
        cancelOnExit: true,
        signal: ac.signal,
        onEvent: (e) => {
          if (e.type === "item") phases.push(`${e.sceneId}:${e.phase}`);
        },
      });
      await waitFor(
        () =>
          phases.filter((p) => p.endsWith(":queued")).length >= 2 &&
          phases.some((p) => p.endsWith(":in_progress")),
        20_000,
      );
      ac.abort();
      const first = await run;
      held.release();
      expect(first.exitCode).toBe(130);
      expect(emu.stats().cancels).toBe(2);
      const { records } = await readJournal(join(tmp.dir, "journal.jsonl"));
      expect(
        records.filter((r) => r.t === "cancelled").map((r) => (r as { answer: string }).answer),
      ).toEqual(["cancellation_requested", "cancellation_requested"]);

      const second = await runManifest({ manifest, runDir: tmp.dir, client, concurrency: 3 });
      expect(second.exitCode).toBe(0);
      const stats = emu.stats();
      // a was running: re-attached, not paid twice; b and c were cancelled in the queue: submitted again.
      expect(stats.submits.total).toBe(5);
      expect(Object.values(stats.submits.byInput).sort()).toEqual([1, 2, 2]);
      expect(second.report.items.map((i) => i.status)).toEqual(["done", "done", "done"]);
    } finally {
      await emu.close();
      await tmp.cleanup();
    }
  }, 60_000);

  it("stops fast when fal cannot be reached at all, naming the host and the way out; nothing is submitted", async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    const tmp = await makeTempDir();
    try {
      const manifest = parseManifest(
        `name: offline\nscenes:\n${Array.from({ length: 8 }, (_, i) => `  - prompt: offline scene ${i}\n`).join("")}`,
        { file: "o.yaml" },
      );
      const client = createHailuoClient({
        emulatorUrl: `http://127.0.0.1:${port}`,
        submitRetries: 1,
        submitRetryBaseDelayMs: 5,
      });
      const err = await runManifest({
        manifest,
        runDir: tmp.dir,
        client,
        concurrency: 2,
        retries: 5,
        retryBaseDelayMs: 5,
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "unreachable", retryable: false });
      expect((err as Error).message).toContain(`127.0.0.1:${port}`);
      expect((err as Error).message).toContain("FAL_EMULATOR_URL");
      const { records } = await readJournal(join(tmp.dir, "journal.jsonl"));
      expect(records.filter((r) => r.t === "submitted")).toEqual([]);
      // It gave up after two submits in a row, not after every clip's retries.
      expect(records.filter((r) => r.t === "submitting").length).toBeLessThanOrEqual(3);
      const report = JSON.parse(await readFile(join(tmp.dir, "report.json"), "utf8"));
      expect(report.totals).toMatchObject({ billedUsd: 0, possibleDoubleChargeUsd: 0 });
    } finally {
      await tmp.cleanup();
    }
  });

  it("stops the whole run on an auth failure", async () => {
    const emu = await startTestEmulator({ render: "shared", apiKey: "good" });
    const tmp = await makeTempDir();
    try {
      const manifest = parseManifest(
        `name: auth\nscenes:\n  - prompt: one\n  - prompt: two\n  - prompt: three\n`,
        { file: "a.yaml" },
      );
      await expect(
        runManifest({
          manifest,
          runDir: tmp.dir,
          client: createHailuoClient({ emulatorUrl: emu.url, credentials: "bad" }),
          concurrency: 1,
        }),
      ).rejects.toMatchObject({ code: "auth" });
      const { records } = await readJournal(join(tmp.dir, "journal.jsonl"));
      expect(records.filter((r) => r.t === "submitting")).toHaveLength(1);
    } finally {
      await emu.close();
      await tmp.cleanup();
    }
  });

  it("neutralises spreadsheet formulas in report.csv", async () => {
    const emu = await startTestEmulator({ render: "shared" });
    const tmp = await makeTempDir();
    try {
      const manifest = parseManifest(
        `name: csv\nscenes:\n  - id: f\n    prompt: "=HYPERLINK(\\"http://x\\")"\n`,
        { file: "c.yaml" },
      );
      await runManifest({
        manifest,
        runDir: tmp.dir,
        client: createHailuoClient({ emulatorUrl: emu.url }),
      });
      const csv = await readFile(join(tmp.dir, "report.csv"), "utf8");
      expect(csv).toContain(`"'=HYPERLINK(""http://x"")"`);
    } finally {
      await emu.close();
      await tmp.cleanup();
    }
  });
});
