import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { HAILUO_ENDPOINT, type HailuoClient } from "@hailuo/core";
import type { HailuoError } from "@hailuo/shared";
import { clipFactsOf, clipFileName } from "./clip-file.js";
import type { JournalStore } from "./journal-store.js";
import type { PlanItem } from "./plan.js";
import { sameInput } from "./reconcile.js";
import { newItemState, replayJournal, type ItemState } from "./run-state.js";

// fal's clock and ours may differ; requests are looked for from a little before the folder began.
const SKEW_MS = 120_000;

/** A clip file whose name carries a request id the journal does not know, and the generation it belongs to. */
export interface OrphanClip {
  item: PlanItem;
  /** Relative to the run folder. */
  file: string;
  /** The request id's first eight letters and digits, as the file name keeps them. */
  idPrefix: string;
}

const idPrefixOf = (requestId: string) => requestId.replace(/[^A-Za-z0-9]/g, "").slice(0, 8);

/**
 * Clips in `clips/` that belong to a generation without a single journal record: a clip's name is
 * its scene, take and request id (`clipFileName`), so one the journal never mentions was paid for
 * in a run whose records were lost. Pure apart from listing the folder.
 */
export async function findOrphanClips(runDir: string, items: PlanItem[], states: Map<string, ItemState>): Promise<OrphanClip[]> {
  const unrecorded = new Map(items.filter((i) => !states.has(i.key)).map((i) => [clipFileName(i, "").slice(0, -4), i]));
  if (!unrecorded.size) return [];
  const known = new Set([...states.values()].flatMap((s) => s.requestIds.map(idPrefixOf)));
  const orphans: OrphanClip[] = [];
  for (const name of await readdir(join(runDir, "clips")).catch(() => [] as string[])) {
    const m = /^(.+-)([A-Za-z0-9]{1,8})\.mp4$/.exec(name);
    const item = m && unrecorded.get(m[1]!);
    if (!m || !item || known.has(m[2]!)) continue;
    orphans.push({ item, file: `clips/${name}`, idPrefix: m[2]! });
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
  signal?: AbortSignal;
}): Promise<Recovery> {
  const { runDir, items, states, journal } = o;
  const recovery: Recovery = { adopted: [], rejected: [], lookedUp: 0 };
  const orphans = await findOrphanClips(runDir, items, states);
  if (!orphans.length && !o.damaged) return recovery;
  // When the folder began: its journal's birth (a journal cut short keeps its inode).
  const info = await stat(join(runDir, "journal.jsonl")).catch(() => undefined);
  const since = new Date(Math.min(info?.birthtimeMs || Infinity, info?.mtimeMs ?? Date.now(), Date.now()) - SKEW_MS);
  let listing: Promise<{ request_id: string; json_input?: unknown }[] | undefined> | undefined;
  const requestList = () =>
    (listing ??= o.client.platform.requestsByEndpoint({ endpointId: HAILUO_ENDPOINT, start: since, end: new Date(Date.now() + SKEW_MS) }, { signal: o.signal }).catch((e: HailuoError) => {
      if (e.code === "platform_unavailable") return undefined;
      throw e;
    }));
  for (const orphan of orphans) {
    if (states.has(orphan.item.key)) continue; // a second file for the same take: the first was adopted
    const facts = await clipFactsOf(runDir, orphan.item, orphan.file).catch((e: Error) => {
      recovery.rejected.push({ file: orphan.file, reason: e.message });
      return undefined;
    });
    if (!facts) continue;
    const rows = await requestList();
    const full = rows?.find((r) => idPrefixOf(r.request_id) === orphan.idPrefix && sameInput(r.json_input, orphan.item.input))?.request_id;
    const requestId = full ?? orphan.idPrefix;
    const record = { t: "recovered" as const, key: orphan.item.key, requestId, via: full ? ("fal" as const) : ("disk" as const), usd: orphan.item.costUsd, seconds: Number(orphan.item.input.duration), ...facts };
    await journal.append(record);
    replayJournal([{ ...record, at: new Date().toISOString() }], states);
    recovery.adopted.push({ item: orphan.item, file: orphan.file, requestId, confirmed: Boolean(full) });
  }
  // The rest without records: looked up on fal's request list before they are submitted.
  for (const item of items) {
    if (states.has(item.key)) continue;
    const s = newItemState(item.key);
    s.unreconciled.push(since.toISOString());
    states.set(item.key, s);
    recovery.lookedUp++;
  }
  return recovery;
}
