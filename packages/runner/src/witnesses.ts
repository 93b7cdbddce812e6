import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { HailuoClient } from "@hailuo/core";
import type { HailuoError } from "@hailuo/shared";
import type { RunStore } from "@hailuo/store";
import { clipFactsOf, clipFileName, requestIdPrefix } from "./clip-file.js";
import { readJournal, type JournalStore } from "./journal-store.js";
import type { PlanItem } from "./plan.js";
import { SKEW_MS, sameInput } from "./reconcile.js";
import { newItemState, replayJournal, type ItemState } from "./run-state.js";

/** A clip file whose name carries a request id the journal does not know, and the generation it belongs to. */
export interface OrphanClip {
  item: PlanItem;
  /** Relative to the run folder. */
  file: string;
  /** The request id's first eight letters and digits, as the file name keeps them. */
  idPrefix: string;
}

/**
 * Clips in `clips/` that belong to a generation without a single journal record: a clip's name is
 * its scene, take and request id (`clipFileName`), so one the journal never mentions was paid for
 * in a run whose records were lost. Pure: `clipNames` are the names `clips/` holds.
 */
export function findOrphanClips(
  clipNames: readonly string[],
  items: PlanItem[],
  states: Map<string, ItemState>,
): OrphanClip[] {
  const known = new Set([...states.values()].flatMap((s) => s.requestIds.map(requestIdPrefix)));
  // Clip names the journal never mentions; usually none, and then nothing more is worked out.
  const unknown = clipNames.flatMap((name) => {
    const m = /^(.+-)([A-Za-z0-9]{1,8})\.mp4$/.exec(name);
    return m && !known.has(m[2]!) ? [{ name, stem: m[1]!, idPrefix: m[2]! }] : [];
  });
  if (!unknown.length) return [];
  // A stem two generations share (scene "s1" take 2, and a scene named "s1-take2") names neither.
  const byStem = new Map<string, PlanItem | null>();
  for (const i of items) {
    const stem = clipFileName(i, "").slice(0, -4);
    byStem.set(stem, byStem.has(stem) && byStem.get(stem)?.key !== i.key ? null : i);
  }
  const orphans: OrphanClip[] = [];
  for (const { name, stem, idPrefix } of unknown) {
    const item = byStem.get(stem);
    if (item && !states.has(item.key)) orphans.push({ item, file: `clips/${name}`, idPrefix });
  }
  return orphans;
}

/** A clip in `clips/`: its name there, and for a bucket's object when it was written. */
type ClipEntry = { name: string; modifiedMs?: number };

/**
 * A run's clips in `clips/`, one level deep: a folder's by name alone (one readdir, run at every
 * start), a bucket's objects with their times.
 */
async function clipsOf(store: RunStore): Promise<ClipEntry[]> {
  if (store.kind === "local")
    return (await readdir(join(store.dir, "clips")).catch(() => [] as string[])).map((name) => ({
      name,
    }));
  return (await store.listArtifacts("clips/"))
    .filter((a) => !a.name.includes("/", 6))
    .map((a) => ({ name: a.name.slice("clips/".length), modifiedMs: a.modifiedMs }));
}

/**
 * Paid clips of `items` that the run's journal never mentions (its records were lost): what a
 * run recovers before it submits, and what work spread over a queue must not pay for again.
 */
export async function unrecordedClips(store: RunStore, items: PlanItem[]): Promise<string[]> {
  const clips = await clipsOf(store);
  if (!clips.length) return [];
  const states = replayJournal((await readJournal(store)).records);
  return findOrphanClips(
    clips.map((c) => c.name),
    items,
    states,
  ).map((o) => o.file);
}

/** What `recoverFromWitnesses` found. */
export interface Recovery {
  /** Clips adopted from disk, journaled as recovered (billed in an earlier run). */
  adopted: { item: PlanItem; file: string; requestId: string; confirmed: boolean }[];
  /** Clip files that matched no verifiable clip (left in place, never deleted). */
  rejected: { file: string; reason: string }[];
  /** Generations without records that are looked up on fal's request list before any submit. */
  lookedUp: number;
}

// A bucket keeps no birth times: its objects' LastModified come after the requests they witness,
// a clip's by up to the item timeout (15 min) and its save. An hour before the oldest covers both.
const BUCKET_LOOKBACK_MS = 3_600_000;

/** The earliest times that may precede the run's first request, as far as its files still say. */
async function startTimes(store: RunStore, clips: readonly ClipEntry[]): Promise<number[]> {
  if (store.kind === "local") {
    // The journal's birth (where the filesystem keeps one, and the file kept its inode), run.json.
    const times = await Promise.all(
      ["journal.jsonl", "run.json", "clips"].map((f) =>
        stat(join(store.dir, f)).catch(() => undefined),
      ),
    );
    return times.flatMap((t) => (t ? [t.birthtimeMs || Infinity, t.mtimeMs] : []));
  }
  const runFile = await store.statArtifact("run.json");
  return [runFile, ...clips].flatMap((a) =>
    a?.modifiedMs ? [a.modifiedMs - BUCKET_LOOKBACK_MS] : [],
  );
}

/**
 * The journal is not the only witness of what was paid. When a run has generations the journal
 * knows nothing of, and there is evidence that records were lost (a clip the journal never
 * mentions, damaged lines, a run.json beside an empty journal), each such generation is checked
 * first against `clips/` (a verified clip is adopted: journaled as `recovered`, never paid again)
 * and then, before its first submit, against fal's request list (its state is marked as a lost
 * submit sent since the run began, so the item step's reconcile re-attaches a request fal knows).
 * A folder's clips are its files; a bucket run's are its objects, each brought down and checked.
 */
export async function recoverFromWitnesses(o: {
  store: RunStore;
  items: PlanItem[];
  states: Map<string, ItemState>;
  journal: JournalStore;
  client: HailuoClient;
  /**
   * Records may be missing although no clip says so: the journal had damaged lines, or none at
   * all beside a run.json (a deleted journal, a Redis that lost a bucket run's stream).
   */
  recordsLost: boolean;
  /** The journal's first surviving record's time: its lost records may be older than the file. */
  firstAt?: string;
  /**
   * Generations the run already recorded in run.json (by key): without fal's request list, a
   * clip is adopted only for one of these, whose input the folder's run asked for.
   */
  recordedKeys: () => ReadonlySet<string>;
  signal?: AbortSignal;
}): Promise<Recovery> {
  const { store, items, states, journal } = o;
  const recovery: Recovery = { adopted: [], rejected: [], lookedUp: 0 };
  // A bucket's clip is journaled before its run goes on: one the journal does not know means its
  // records were lost, so a bucket is listed only then (not at every start of every run).
  if (store.kind !== "local" && !o.recordsLost) return recovery;
  const clips = await clipsOf(store);
  const orphans = findOrphanClips(
    clips.map((c) => c.name),
    items,
    states,
  );
  if (!orphans.length && !o.recordsLost) return recovery;
  // When the run began, as far as anything still says: its files, its first surviving record.
  const since = new Date(
    Math.min(
      Date.now(),
      o.firstAt ? Date.parse(o.firstAt) : Infinity,
      ...(await startTimes(store, clips)),
    ) - SKEW_MS,
  );
  // fal lists requests per endpoint: each orphan's own endpoint is asked, once.
  const listings = new Map<
    string,
    Promise<{ request_id: string; json_input?: unknown }[] | undefined>
  >();
  const requestList = (endpointId: string) => {
    let listing = listings.get(endpointId);
    if (!listing)
      listings.set(
        endpointId,
        (listing = o.client.platform
          .requestsByEndpoint(
            { endpointId, start: since, end: new Date(Date.now() + SKEW_MS) },
            { signal: o.signal },
          )
          .catch((e: HailuoError) => {
            if (e.code === "platform_unavailable") return undefined;
            throw e;
          })),
      );
    return listing;
  };
  for (const orphan of orphans) {
    if (states.has(orphan.item.key)) continue; // a second file for the same take: the first was adopted
    // A bucket's clip is brought into the scratch folder first, checked against its stored hash.
    const facts = await store
      .getArtifact(orphan.file)
      .then(() => clipFactsOf(store.dir, orphan.item, orphan.file))
      .catch((e: Error) => {
        recovery.rejected.push({ file: orphan.file, reason: e.message });
        return undefined;
      });
    if (!facts) continue;
    const rows = await requestList(orphan.item.endpoint);
    const full = rows?.find(
      (r) =>
        requestIdPrefix(r.request_id) === orphan.idPrefix &&
        sameInput(r.json_input, orphan.item.input),
    )?.request_id;
    // fal lists no such request for this input: the file is some other generation's (an edited prompt).
    if (rows && !full) {
      recovery.rejected.push({
        file: orphan.file,
        reason: `fal's request list has no request ${orphan.idPrefix}… for this scene's input`,
      });
      continue;
    }
    if (!rows && !o.recordedKeys().has(orphan.item.key)) {
      recovery.rejected.push({
        file: orphan.file,
        reason:
          "fal's request list cannot be read, and the folder's run.json never asked for this input",
      });
      continue;
    }
    const requestId = full ?? orphan.idPrefix;
    const record = {
      t: "recovered" as const,
      key: orphan.item.key,
      requestId,
      via: full ? ("fal" as const) : ("disk" as const),
      usd: orphan.item.costUsd,
      seconds: Number(orphan.item.input.duration),
      ...facts,
    };
    replayJournal([await journal.append(record)], states);
    recovery.adopted.push({
      item: orphan.item,
      file: orphan.file,
      requestId,
      confirmed: Boolean(full),
    });
  }
  // The rest without records: looked up on fal's request list before they are submitted.
  for (const item of items) {
    if (states.has(item.key)) continue;
    const s = newItemState(item.key);
    s.lookUpSince = since.toISOString();
    states.set(item.key, s);
    recovery.lookedUp++;
  }
  return recovery;
}
