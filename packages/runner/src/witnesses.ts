import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { HailuoClient } from "@hailuo/core";
import type { HailuoError } from "@hailuo/shared";
import { clipFactsOf, clipFileName, requestIdPrefix } from "./clip-file.js";
import type { JournalStore } from "./journal-store.js";
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
 * in a run whose records were lost. Pure apart from listing the folder.
 */
export async function findOrphanClips(
  runDir: string,
  items: PlanItem[],
  states: Map<string, ItemState>,
): Promise<OrphanClip[]> {
  const known = new Set([...states.values()].flatMap((s) => s.requestIds.map(requestIdPrefix)));
  // Clip names the journal never mentions; usually none, and then nothing more is worked out.
  const unknown = (await readdir(join(runDir, "clips")).catch(() => [] as string[])).flatMap(
    (name) => {
      const m = /^(.+-)([A-Za-z0-9]{1,8})\.mp4$/.exec(name);
      return m && !known.has(m[2]!) ? [{ name, stem: m[1]!, idPrefix: m[2]! }] : [];
    },
  );
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

/** What `recoverFromWitnesses` found. */
export interface Recovery {
  /** Clips adopted from disk, journaled as recovered (billed in an earlier run). */
  adopted: { item: PlanItem; file: string; requestId: string; confirmed: boolean }[];
  /** Clip files that matched no verifiable clip (left in place, never deleted). */
  rejected: { file: string; reason: string }[];
  /** Generations without records that are looked up on fal's request list before any submit. */
  lookedUp: number;
}

/**
 * The journal is not the only witness of what was paid. When a folder with a run has generations
 * the journal knows nothing of, and there is evidence that records were lost (a clip file the
 * journal never mentions, or damaged lines), each such generation is checked first against
 * `clips/` (a verified clip is adopted: journaled as `recovered`, never paid again) and then,
 * before its first submit, against fal's request list (its state is marked as a lost submit sent
 * since the folder began, so the item step's reconcile re-attaches a request fal knows).
 */
export async function recoverFromWitnesses(o: {
  runDir: string;
  items: PlanItem[];
  states: Map<string, ItemState>;
  journal: JournalStore;
  client: HailuoClient;
  /** The journal had damaged lines: records may be missing although no clip file says so. */
  damaged: boolean;
  /** The journal's first surviving record's time: its lost records may be older than the file. */
  firstAt?: string;
  /**
   * Generations the run already recorded in run.json (by key): without fal's request list, a
   * clip is adopted only for one of these, whose input the folder's run asked for.
   */
  recordedKeys: () => ReadonlySet<string>;
  signal?: AbortSignal;
}): Promise<Recovery> {
  const { runDir, items, states, journal } = o;
  const recovery: Recovery = { adopted: [], rejected: [], lookedUp: 0 };
  const orphans = await findOrphanClips(runDir, items, states);
  if (!orphans.length && !o.damaged) return recovery;
  // When the folder began, as far as anything still says: the journal's birth (where the
  // filesystem keeps one, and the file kept its inode), its first surviving record, run.json.
  const times = await Promise.all(
    ["journal.jsonl", "run.json", "clips"].map((f) => stat(join(runDir, f)).catch(() => undefined)),
  );
  const since = new Date(
    Math.min(
      Date.now(),
      o.firstAt ? Date.parse(o.firstAt) : Infinity,
      ...times.flatMap((t) => (t ? [t.birthtimeMs || Infinity, t.mtimeMs] : [])),
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
    const facts = await clipFactsOf(runDir, orphan.item, orphan.file).catch((e: Error) => {
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
