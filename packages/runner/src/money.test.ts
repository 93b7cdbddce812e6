import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import {
  holdableClock,
  makeTempDir,
  startFaultyGateway,
  startTestEmulator,
  waitFor,
} from "@hailuo/test-utils";
import { JournalStore, readJournal, runManifest, writeRunFile, type RunOptions } from "./index.js";
import { readRunFileText } from "./run-folder.js";
import { board, expectMoneyFacts, runFixture, STORE_KINDS } from "./test-money.js";

// Money tests: each reproduces a way a run used to pay twice or lose a paid clip, against the
// emulator over real HTTP, and ends with the three facts: submits per scene-take, the emulator's
// bill equal to the report, every clip on disk decoding completely.

const isRoot = process.getuid?.() === 0;
const mount = (args: string[]) => execFileSync("mount", args);

describe("money safety", () => {
  const fx = runFixture({ slots: 4 });
  const opts = (o: Partial<RunOptions> & Pick<RunOptions, "manifest">) =>
    fx.opts({ concurrency: 2, ...o });

  // A tiny tmpfs stands in for a full disk; mounting needs root (CI runs as root).
  it.skipIf(!isRoot)(
    "clips/ fills up mid-run: paid clips stay 'completed, not saved', the run stops naming the path, resume downloads them without a new submit",
    async () => {
      const manifest = board("full", 8);
      // The clip size, from a second emulator sharing the render cache (so this emulator's bill stays the run's).
      const sizer = await startTestEmulator({ render: "shared" });
      const clipBytes =
        (
          await createHailuoClient({ emulatorUrl: sizer.url })
            .generate({ prompt: "size probe" })
            .finally(() => sizer.close())
        ).output.video.file_size ?? 200_000;
      const clips = join(fx.dir, "clips");
      await mkdir(clips, { recursive: true });
      mount([
        "-t",
        "tmpfs",
        "-o",
        `size=${Math.ceil((clipBytes * 3.5) / 4096) * 4096}`,
        "tmpfs",
        clips,
      ]);
      try {
        const err = await runManifest(opts({ manifest, diskBytesPerSecond: 1 })).catch(
          (e: unknown) => e,
        );
        expect(err).toMatchObject({ code: "disk_full", retryable: false });
        expect((err as Error).message).toContain(clips);
        const { records } = await readJournal(join(fx.dir, "journal.jsonl"));
        expect(records.some((r) => r.t === "save_failed" && r.code === "disk_full")).toBe(true);
        expect(records.filter((r) => r.t === "failed")).toEqual([]);
        // Room again: resume saves every paid clip and submits nothing new.
        mount(["-o", "remount,size=8m", clips]);
        await waitFor(() => fx.emu.stats().completed === fx.emu.stats().submits.total);
        const resumed = await runManifest(opts({ manifest, diskBytesPerSecond: 1 }));
        expect(
          resumed.report.items.map((i) => i.status).filter((s) => s !== "done" && s !== "cached"),
        ).toEqual([]);
        expect(resumed.exitCode).toBe(0);
        expect(resumed.report.totals.billedUsd).toBeCloseTo(8 * 0.27, 6);
        await expectMoneyFacts(fx.emu, resumed.report, fx.dir, {
          submitsPerTake: Array(8).fill(1),
        });
      } finally {
        execFileSync("umount", ["-l", clips]);
      }
    },
  );

  it.skipIf(!isRoot)(
    "clips/ not writable (read-only): refused before the first submit, exit 2 material",
    async () => {
      const clips = join(fx.dir, "clips");
      await mkdir(clips, { recursive: true });
      mount(["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", clips]);
      try {
        const err = await runManifest(opts({ manifest: board("ro", 3) })).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: "preflight" });
        expect((err as Error).message).toContain(`${clips} is not writable`);
        expect(fx.emu.stats().submits.total).toBe(0);
      } finally {
        execFileSync("umount", ["-l", clips]);
      }
    },
  );

  it("a missing audio bed or an unfilled variable is refused before the first submit", async () => {
    const manifest = board("audio", 2, "assemble:\n  audio: nowhere/music.mp3\n");
    manifest.scenes[1]!.prompt = "left {{unfilled}} by hand";
    const err = await runManifest(opts({ manifest })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "preflight" });
    expect((err as Error).message).toContain("nowhere/music.mp3 not found");
    expect((err as Error).message).toContain("scene s1: undefined variable {{unfilled}}");
    expect(fx.emu.stats().submits.total).toBe(0);
  });

  it("a take-over keeps what the enqueue recorded for every worker: the budget, price and retries", async () => {
    const manifest = board("kept-spec", 1);
    const spec = { usdPerSecond: 0.045, budgetUsd: 0.27, retries: 5 };
    await writeRunFile(fx.dir, manifest, undefined, undefined, spec);
    const result = await runManifest(opts({ manifest }));
    expect((await readRunFileText(fx.dir))?.file).toMatchObject(spec);
    await expectMoneyFacts(fx.emu, result.report, fx.dir, { submitsPerTake: [1] });
  });

  it("refuses to resume against another backend than the run's, unless told to; and a folder a distributed run owns", async () => {
    const manifest = board("backend", 1);
    await runManifest(opts({ manifest, backend: { kind: "emulator", url: fx.emu.url } }));
    const err = await runManifest(opts({ manifest, backend: { kind: "builtin-emulator" } })).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: "wrong_backend" });
    expect((err as Error).message).toContain(`set FAL_EMULATOR_URL=${fx.emu.url}`);
    await expect(
      runManifest(opts({ manifest, backend: { kind: "builtin-emulator" }, backendOverride: true })),
    ).resolves.toMatchObject({ exitCode: 0 });

    const journal = await JournalStore.open(join(fx.dir, "journal.jsonl"));
    await journal.append({ t: "enqueued", items: 1 });
    await journal.close();
    await expect(runManifest(opts({ manifest }))).rejects.toMatchObject({ code: "locked" });
    await expect(runManifest(opts({ manifest, takeOver: true }))).resolves.toMatchObject({
      exitCode: 0,
    });
    expect(fx.emu.stats().submits.total).toBe(1);
  });
});

// The same faults against both stores: a folder, and Redis + a bucket that share nothing local.
describe.each(STORE_KINDS)("money safety, %s store", (kind) => {
  const fx = runFixture({ slots: 4 }, kind);
  const opts = (o: Partial<RunOptions> & Pick<RunOptions, "manifest">) =>
    fx.opts({ concurrency: 2, ...o });

  /** Four scenes through a gateway that forwards the first two submits, then answers 502. */
  async function runBehind502Gateway() {
    const gw = await startFaultyGateway(fx.emu.url);
    try {
      gw.failNextSubmits("502", 2);
      const warnings: string[] = [];
      const result = await runManifest(
        opts({
          manifest: board("gateway", 4),
          client: createHailuoClient({ emulatorUrl: gw.url, submitRetryBaseDelayMs: 10 }),
          onEvent: (e) => e.type === "warning" && warnings.push(e.message),
        }),
      );
      return { result, warnings };
    } finally {
      await gw.close();
    }
  }

  it("a gateway that answers 502 after forwarding a submit: found on fal's request list and re-attached, never paid twice", async () => {
    const { result, warnings } = await runBehind502Gateway();
    expect(result.exitCode).toBe(0);
    expect(
      warnings.filter((w) => w.includes("was found on fal") && w.includes("re-attached")),
    ).toHaveLength(2);
    const t = result.report.totals;
    expect(t).toMatchObject({
      reconciledSubmits: 2,
      possibleDoubleChargeUsd: 0,
      billedRequests: 4,
    });
    expect(result.report.ambiguousSubmits).toEqual([]);
    await expectMoneyFacts(fx.emu, result.report, fx.run, { submitsPerTake: [1, 1, 1, 1] });
  });

  it("a gateway answering 502 after forwarding a submit, when fal's Platform API refuses the key (403): never re-sent blindly, each resubmit flagged with its cost", async () => {
    await fx.restart({ slots: 4, platformApi: "forbidden" });
    const { result, warnings } = await runBehind502Gateway();
    expect(result.exitCode).toBe(0);
    expect(
      warnings.some(
        (w) => w.includes("HTTP 403") && w.includes("flagged as possible double charges"),
      ),
    ).toBe(true);
    // 4 scene-takes + 2 flagged ambiguous submits, which fal did queue and run.
    expect(fx.emu.stats().submits.total).toBe(6);
    await waitFor(() => fx.emu.stats().completed === 6);
    expect(result.report.totals.possibleDoubleChargeUsd).toBeCloseTo(0.54, 6);
    expect(result.report.ambiguousSubmits).toHaveLength(2);
    expect(result.report.ambiguousSubmits[0]!.reason).toContain("HTTP 502");
    await expectMoneyFacts(fx.emu, result.report, fx.run, {
      submitsPerTake: [2, 2, 1, 1],
      flaggedAndBilled: 2,
    });
  });

  it("Ctrl-C while submits are on the wire: they are journaled, not lost; resume re-attaches (one submit per scene)", async () => {
    const gw = await startFaultyGateway(fx.emu.url);
    try {
      gw.failNextSubmits("delay", 4);
      const manifest = board("ctrlc", 4);
      const client = createHailuoClient({ emulatorUrl: gw.url });
      const ac = new AbortController();
      const warnings: string[] = [];
      const run = runManifest(
        opts({
          manifest,
          client,
          concurrency: 4,
          signal: ac.signal,
          onEvent: (e) => e.type === "warning" && warnings.push(e.message),
        }),
      );
      await waitFor(() => gw.held() === 4);
      ac.abort();
      await waitFor(() => warnings.some((w) => w.includes("4 submit(s) already sent")));
      gw.release();
      const first = await run;
      expect(first.exitCode).toBe(130);
      const { records } = await readJournal(fx.run);
      expect(records.filter((r) => r.t === "submitted")).toHaveLength(4);
      const second = await runManifest(opts({ manifest, client }));
      expect(second.exitCode).toBe(0);
      expect(second.report.totals.possibleDoubleChargeUsd).toBe(0);
      await expectMoneyFacts(fx.emu, second.report, fx.run, { submitsPerTake: [1, 1, 1, 1] });
    } finally {
      await gw.close();
    }
  });

  it("a second Ctrl-C aborts submits on the wire: resume finds them on fal and re-attaches (one submit per scene)", async () => {
    const gw = await startFaultyGateway(fx.emu.url);
    try {
      gw.failNextSubmits("delay", 2);
      const manifest = board("hard", 2);
      const client = createHailuoClient({ emulatorUrl: gw.url });
      const soft = new AbortController();
      const hard = new AbortController();
      const run = runManifest(
        opts({ manifest, client, signal: soft.signal, hardSignal: hard.signal }),
      );
      await waitFor(() => gw.held() === 2);
      soft.abort();
      hard.abort();
      expect((await run).exitCode).toBe(130);
      gw.release();
      const second = await runManifest(opts({ manifest, client }));
      expect(second.report.totals).toMatchObject({
        possibleDoubleChargeUsd: 0,
        reconciledSubmits: 2,
      });
      await expectMoneyFacts(fx.emu, second.report, fx.run, { submitsPerTake: [1, 1] });
    } finally {
      await gw.close();
    }
  });

  it("the ledger: a re-download costs nothing, superseded takes stay billed, the folder's bill equals the emulator's", async () => {
    const v1 = board("ledger", 3);
    const r1 = await runManifest(opts({ manifest: v1 }));
    expect(r1.report.totals).toMatchObject({ billedRequests: 3, thisRunBilledUsd: 0.81 });
    // Delete one clip (re-downloaded, free) and edit another scene (a new paid take).
    await fx.lose(r1.report.items[0]!.file!);
    const v2 = board("ledger", 3);
    v2.scenes[2]!.prompt = "ledger scene 2, edited";
    const r2 = await runManifest(opts({ manifest: v2 }));
    expect(r2.report.items.map((i) => i.status)).toEqual(["done", "cached", "done"]);
    expect(r2.report.totals).toMatchObject({
      billedRequests: 4,
      thisRunBilledUsd: 0.27,
      reusedClips: 1,
    });
    expect(r2.report.totals.billedUsd).toBeCloseTo(4 * 0.27, 6);
    expect(fx.emu.stats().downloads).toBe(5);
    await expectMoneyFacts(fx.emu, r2.report, fx.run, { submitsPerTake: [1, 1, 1] });
  });
});

describe("a bucket run whose ownership is taken", () => {
  // Held while the run is taken from its owner: no generation finishes first, however slow the machine.
  const gate = holdableClock();
  const fx = runFixture({ slots: 4, progressLatencyMs: 1500, clock: gate.clock }, "redis+s3");
  afterEach(() => gate.release());

  it("stops, writes nothing more into the run, says why; the next owner finishes it paying each clip once", async () => {
    const manifest = board("taken", 4);
    gate.hold();
    const run = runManifest(fx.opts({ manifest, concurrency: 4 }));
    const { client: redis, keys } = fx.redis;
    const records = async () => (await redis.xrange(keys.log, "-", "+")).length;
    await waitFor(async () => (await readJournal(fx.run)).records.some((r) => r.t === "submitted"));
    // Another process takes the run: this one was paused past its lease, say.
    await redis.set(keys.lease, "next-owner", "PX", 60_000);
    const seen = await records();
    const error = await run.catch((e: unknown) => e);
    gate.release();
    expect(error).toMatchObject({ code: "locked" });
    expect((error as Error).message).toContain("lost ownership");
    expect(
      (await redis.xrange(keys.log, "-", "+")).slice(seen).map(([, f]) => f[1]),
      "nothing appended after the lease was taken",
    ).toEqual([]);
    // The "next owner" goes away; a resume finishes the run.
    await redis.del(keys.lease);
    const resumed = await runManifest(fx.opts({ manifest, concurrency: 4 }));
    expect(resumed.exitCode).toBe(0);
    await expectMoneyFacts(fx.emu, resumed.report, fx.run, { submitsPerTake: [1, 1, 1, 1] });
  });

  it("a submit waiting out a 429's Retry-After is never sent again once the lease is taken", async () => {
    // The first submit is refused (never queued) with Retry-After: 2 s; meanwhile another
    // process takes the run, which would submit the scene itself.
    fx.emu.setFaults({ rules: [{ route: "submit", kind: 429, count: 1, retryAfterS: 2 }] });
    const manifest = board("retry-after", 1);
    // The refusal reaches the run only once the run is taken: its wait starts after that,
    // however slow the machine (a gateway holds the 429's answer).
    const gw = await startFaultyGateway(fx.emu.url);
    try {
      gw.failNextSubmits("delay", 1);
      const client = createHailuoClient({ emulatorUrl: gw.url, submitRetryBaseDelayMs: 10 });
      const run = runManifest(fx.opts({ manifest, client }));
      const { client: redis, keys } = fx.redis;
      await waitFor(() => gw.held() === 1);
      await redis.set(keys.lease, "next-owner", "PX", 60_000);
      gw.release();
      expect(await run.catch((e: unknown) => e)).toMatchObject({ code: "locked" });
      // The run is over, its Retry-After wait with it: nothing was queued by this process.
      expect(fx.emu.stats().submits.total, "no submit re-sent after the lease was lost").toBe(0);
      await redis.del(keys.lease);
    } finally {
      await gw.close();
    }
    fx.emu.setFaults({});
    const resumed = await runManifest(fx.opts({ manifest }));
    expect(resumed.exitCode).toBe(0);
    await expectMoneyFacts(fx.emu, resumed.report, fx.run, { submitsPerTake: [1] });
  });

  it("a Ctrl-C'd run whose lease is taken before its report is uploaded leaves the bucket's report alone", async () => {
    const manifest = board("late-report", 2);
    const { client: redis, keys } = fx.redis;
    const ac = new AbortController();
    // The next owner takes the run right after this one journals "interrupted": as a process
    // paused there past its lease would find on waking.
    const store = fx.run;
    const takenAfterInterrupted: typeof store = {
      ...store,
      async openLog() {
        const log = await store.openLog();
        return {
          ...log,
          async appendLine(line) {
            await log.appendLine(line);
            if (line.includes('"t":"interrupted"'))
              await redis.set(keys.lease, "next-owner", "PX", 60_000);
          },
        };
      },
    };
    // Held: the run is still going when the Ctrl-C comes.
    gate.hold();
    const run = runManifest(
      fx.opts({ manifest, runDir: takenAfterInterrupted, signal: ac.signal }),
    );
    await waitFor(async () => (await readJournal(fx.run)).records.some((r) => r.t === "submitted"));
    ac.abort();
    expect(await run.catch((e: unknown) => e)).toMatchObject({ code: "locked" });
    gate.release();
    expect(await store.statArtifact("report.json"), "no report uploaded by the old owner").toBe(
      undefined,
    );
    await redis.del(keys.lease);
    const resumed = await runManifest(fx.opts({ manifest }));
    expect(resumed.exitCode).toBe(0);
    await expectMoneyFacts(fx.emu, resumed.report, fx.run, { submitsPerTake: [1, 1] });
  });
});

describe("journal", () => {
  it("an append after a torn line (crash or full disk) starts on a fresh line: no record is lost", async () => {
    const tmp = await makeTempDir();
    try {
      const path = join(tmp.dir, "journal.jsonl");
      await writeFile(
        path,
        `${JSON.stringify({ t: "run", at: "x" })}\n{"t":"submitting","key":"k","sc`,
      );
      const j = await JournalStore.open(path);
      await j.append({ t: "submitting", key: "k2", scene: "s", take: 1, attempt: 1 });
      await j.append({ t: "interrupted" });
      await j.close();
      const { records, tornLines } = await readJournal(path);
      expect(tornLines).toEqual([2]);
      expect(records.map((r) => r.t)).toEqual(["run", "submitting", "interrupted"]);
    } finally {
      await tmp.cleanup();
    }
  });
});
