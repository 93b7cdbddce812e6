import { createLocalStore } from "@hailuo/store";
import { createRunGuards, memoryBudget } from "./run-guards.js";
import { isDeepStrictEqual } from "node:util";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import type { EmulatorOptions } from "@hailuo/emulator";
import { makeTempDir, startTestEmulator } from "@hailuo/test-utils";
import { processItem } from "./item-step.js";
import { JournalStore, type StoredRecord } from "./journal-store.js";
import { planRun } from "./plan.js";
import {
  applyRecord,
  newItemState,
  replayJournal,
  uploadsOf,
  type ItemState,
} from "./run-state.js";
import { board } from "./test-money.js";
import { createImageInputs } from "./image-inputs.js";
import { isFinalFailure } from "./item-context.js";
import { mixedManifest } from "./test-family.js";

// One reducer: the live steps change an item only by journaling a record and applying it, so the
// state a step holds is, before every record it appends, the fold of the records before it, and a
// replay of the journal ends where the live step ended.

// Every record here is the live run's own (`thisRun`), as journalAndApply applies them.
const fold = (key: string, records: StoredRecord[]) =>
  records.reduce(
    (s, r) => applyRecord(s, r as StoredRecord & { key: string }, true),
    newItemState(key),
  );

/** A run's guards for one item's state, with no budget and nothing to stop. */
const guardsOf = (state: ItemState) =>
  createRunGuards({
    states: () => [state],
    budget: memoryBudget(undefined),
    emit: () => {},
    stopRun: () => {},
  });

describe("applyRecord", () => {
  it.each<[string, EmulatorOptions, number]>([
    ["a clean generation", {}, 1],
    [
      "a lost submit answer found on fal's request list",
      { faults: { rules: [{ route: "submit", kind: "drop", count: 1 }] } },
      1,
    ],
    ["a failed generation submitted again", { faults: { generationErrorCount: 1 } }, 1],
    [
      "a result that answers 503, then the clip",
      { faults: { rules: [{ route: "result", kind: 503, count: 2 }] } },
      1,
    ],
    [
      "answers lost with no request list: resent once, then given up",
      { platformApi: "forbidden", faults: { rules: [{ route: "submit", kind: 502, count: 10 }] } },
      0,
    ],
  ])(
    "%s: the live state is the fold of the journal before every record",
    async (_what, emulator, clips) => {
      const emu = await startTestEmulator({
        render: "shared",
        progressLatencyMs: 100,
        ...emulator,
      });
      const tmp = await makeTempDir();
      try {
        const [item] = planRun(board(`fold ${_what.replace(/[^a-z ]/g, "")}`, 1));
        const journal = await JournalStore.open(join(tmp.dir, "journal.jsonl"));
        const records: StoredRecord[] = [];
        const state: ItemState = newItemState(item!.key);
        const drift: string[] = [];
        const append = journal.append.bind(journal);
        journal.append = async (r) => {
          // Before this record lands, the state holds exactly what the records before it say.
          const folded = fold(item!.key, records);
          if (!isDeepStrictEqual(state, folded))
            drift.push(
              `before "${r.t}" (record ${records.length + 1}): live ${JSON.stringify(state)} folded ${JSON.stringify(folded)}`,
            );
          const stored = await append(r);
          records.push(stored);
          return stored;
        };
        const outcome = await processItem(item!, {
          store: createLocalStore(tmp.dir),
          client: createHailuoClient({ emulatorUrl: emu.url, submitRetryBaseDelayMs: 5 }),
          journal,
          state,
          intact: false,
          signal: new AbortController().signal,
          emit: () => {},
          retries: 3,
          retryBaseDelayMs: 5,
          guards: guardsOf(state),
        });
        await journal.close();
        expect(drift, "live state and fold parted").toEqual([]);
        expect(state).toEqual(fold(item!.key, records));
        // A replay from disk ends in the same place (it also settles a submit left unanswered).
        expect(replayJournal(records, new Map(), { thisRun: () => true }).get(item!.key)).toEqual(
          state,
        );
        expect(outcome).toBe(clips ? "done" : "failed");
        expect(state.clips).toHaveLength(clips);
      } finally {
        await emu.close();
        await tmp.cleanup();
      }
    },
  );

  it("an image-to-video generation: its uploads are the run's records, and the live state is still the fold", async () => {
    const emu = await startTestEmulator({ render: "shared", progressLatencyMs: 100 });
    const tmp = await makeTempDir();
    try {
      const boat = planRun(await mixedManifest(join(tmp.dir, "in"))).find(
        (i) => i.sceneId === "boat",
      )!;
      const client = createHailuoClient({ emulatorUrl: emu.url, submitRetryBaseDelayMs: 5 });
      const journal = await JournalStore.open(join(tmp.dir, "journal.jsonl"));
      const records: StoredRecord[] = [];
      const state: ItemState = newItemState(boat.key);
      const drift: string[] = [];
      const append = journal.append.bind(journal);
      journal.append = async (r) => {
        // Uploads carry no key: the generation's state is the fold of its own records alone.
        const folded = fold(
          boat.key,
          records.filter((x) => "key" in x),
        );
        if (!isDeepStrictEqual(state, folded))
          drift.push(
            `before "${r.t}": live ${JSON.stringify(state)} folded ${JSON.stringify(folded)}`,
          );
        const stored = await append(r);
        records.push(stored);
        return stored;
      };
      const outcome = await processItem(boat, {
        store: createLocalStore(tmp.dir),
        client,
        journal,
        state,
        intact: false,
        signal: new AbortController().signal,
        emit: () => {},
        images: createImageInputs({
          client,
          journal,
          store: createLocalStore(tmp.dir),
          uploads: new Map(),
        }),
        guards: guardsOf(state),
      });
      await journal.close();
      expect(outcome).toBe("done");
      expect(drift, "live state and fold parted").toEqual([]);
      // Start and end image uploaded first, each once, by content; no generation's record.
      expect(records.slice(0, 2).map((r) => r.t)).toEqual(["uploaded", "uploaded"]);
      expect(uploadsOf(records).size).toBe(2);
      expect(replayJournal(records, new Map(), { thisRun: () => true })).toEqual(
        new Map([[boat.key, state]]),
      );
      expect(emu.stats().uploads.completed).toBe(2);
    } finally {
      await emu.close();
      await tmp.cleanup();
    }
  });

  it("an upload record changes no generation and is found again by content", () => {
    const uploaded = {
      t: "uploaded",
      sha256: "ab".repeat(32),
      url: "https://v3.fal.media/files/x/frame.png",
      bytes: 10,
      scene: "gull",
      field: "image_url",
      at: "t0",
    } as const;
    const submit = {
      t: "submitting",
      key: "k",
      scene: "s",
      take: 1,
      attempt: 1,
      at: "t1",
    } as const;
    expect(replayJournal([uploaded, submit])).toEqual(replayJournal([submit]));
    expect(
      uploadsOf([uploaded, { ...uploaded, url: "https://v3.fal.media/files/y/again.png" }]),
    ).toEqual(
      new Map([
        [
          uploaded.sha256,
          { sha256: uploaded.sha256, url: "https://v3.fal.media/files/y/again.png", bytes: 10 },
        ],
      ]),
    );
  });

  it("a scene whose source ended with no clip is failed, not finally: a later run tries again", () => {
    const s = fold("k", [
      {
        t: "failed",
        key: "k",
        code: "preflight",
        message: "continue_from a: scene a has no clip to continue from",
        retryable: false,
        live: false,
        at: "t1",
      },
    ]);
    expect(s).toMatchObject({ phase: "failed", live: false, attempts: 0, requests: [] });
    expect(isFinalFailure(s)).toBe(false);
  });

  it.each<[string, StoredRecord[], Partial<ItemState>]>([
    [
      "a send with no answer, then another",
      [
        { t: "submitting", key: "k", scene: "s", take: 1, attempt: 1, at: "t1" },
        { t: "submitting", key: "k", scene: "s", take: 1, attempt: 2, at: "t2" },
      ],
      { phase: "submitting", unreconciled: ["t1"], attempts: 2 },
    ],
    [
      "a lost answer found on fal",
      [
        { t: "submitting", key: "k", scene: "s", take: 1, attempt: 1, at: "t1" },
        { t: "ambiguous", key: "k", message: "502", at: "t2" },
        {
          t: "reconciled",
          key: "k",
          handle: { endpoint: "e", requestId: "r1", submittedAt: "t1" },
          at: "t3",
        },
      ],
      { phase: "submitted", live: true, unreconciled: [], requestIds: ["r1"] },
    ],
    [
      "lost answers fal's list explains only before its look-up",
      [
        { t: "submitting", key: "k", scene: "s", take: 1, attempt: 1, at: "2026-01-01T00:00:01Z" },
        { t: "ambiguous", key: "k", message: "502", at: "x" },
        { t: "submitting", key: "k", scene: "s", take: 1, attempt: 2, at: "2026-01-01T00:00:09Z" },
        { t: "ambiguous", key: "k", message: "502", at: "x" },
        { t: "unfound", key: "k", lost: 1, before: "2026-01-01T00:00:05Z", at: "x" },
      ],
      { phase: "new", unreconciled: ["2026-01-01T00:00:09Z"] },
    ],
    [
      "a paid clip not saved",
      [
        { t: "completed", key: "k", requestId: "r1", videoUrl: "u", at: "t1" },
        {
          t: "save_failed",
          key: "k",
          requestId: "r1",
          code: "disk_full",
          message: "full",
          at: "t2",
        },
      ],
      {
        phase: "completed",
        videoUrl: "u",
        unsaved: { code: "disk_full", message: "full" },
        requestIds: ["r1"],
      },
    ],
    [
      "a timed-out wait keeps the request live",
      [
        {
          t: "submitted",
          key: "k",
          handle: { endpoint: "e", requestId: "r1", submittedAt: "t" },
          at: "t1",
        },
        {
          t: "failed",
          key: "k",
          code: "timeout",
          message: "slow",
          retryable: true,
          live: true,
          at: "t2",
        },
      ],
      { phase: "failed", live: true },
    ],
    [
      "a request that ended without a video",
      [
        {
          t: "submitted",
          key: "k",
          handle: { endpoint: "e", requestId: "r1", submittedAt: "t" },
          at: "t1",
        },
        { t: "ended", key: "k", requestId: "r1", code: "generation_failed", at: "t2" },
      ],
      { phase: "submitted", live: false },
    ],
  ])("%s", (_what, records, expected) => {
    expect(fold("k", records)).toMatchObject(expected);
  });
});
