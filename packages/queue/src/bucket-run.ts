import { appendFile, readdir, rm, writeFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { readRunReport } from "@hailuo/runner";
import type { RunDocument, RunStore } from "@hailuo/store";
import { scratchReady } from "./run-stores.js";

// What a run's store keeps itself (records, documents) or keeps as clips: never uploaded as output.
// The reports are uploaded by the run that wrote them: a copy brought into scratch earlier may be
// older than the bucket's by now.
const KEPT_ELSEWHERE = new Set([
  "journal.jsonl",
  "run.json",
  "picks.json",
  "run.lock",
  "report.json",
  "report.csv",
]);

/**
 * Brings what the media stage reads of a bucket run into its scratch folder: run.json, picks,
 * the journal (from Redis) and the clips `files` names (checked against their stored checksums).
 * A folder run is already whole.
 */
export async function materializeRun(store: RunStore, files: readonly string[]): Promise<void> {
  if (store.kind === "local") return;
  await scratchReady(store);
  const [spec, picks, log] = await Promise.all([
    store.readDocument("run.json"),
    store.readDocument("picks.json"),
    store.readLog(),
  ]);
  if (spec !== undefined) await writeFile(join(store.dir, "run.json"), spec);
  if (picks !== undefined) await writeFile(join(store.dir, "picks.json"), picks);
  await writeFile(join(store.dir, "journal.jsonl"), log.lines.map((l) => `${l}\n`).join(""));
  // One at a time: a film's clips can be many and large, and the bucket may be far.
  for (const file of files) await store.getArtifact(file);
}

/**
 * Uploads what the media stage made in a bucket run's scratch folder (film, page, posters,
 * sheet): every file but the clips, the film's pieces and what the store keeps itself.
 * Returns the names kept.
 */
export async function keepOutputs(store: RunStore): Promise<string[]> {
  if (store.kind === "local") return [];
  const entries = await readdir(store.dir, { recursive: true, withFileTypes: true });
  const names = entries
    .filter((e) => e.isFile())
    .map((e) => relative(store.dir, join(e.parentPath, e.name)).split(sep).join("/"))
    .filter(
      (n) =>
        !KEPT_ELSEWHERE.has(n) &&
        !n.startsWith("clips/") &&
        // The film's cached pieces serve the next assemble in the same folder; a bucket run's
        // scratch is made anew each time, so they would only double the bucket's bytes.
        !n.startsWith("segments/") &&
        !n.split("/").some((part) => part.startsWith(".")) &&
        !n.endsWith(".part"),
    )
    .sort();
  for (const name of names) await store.putArtifact(name);
  return names;
}

/** Removes a clip from a bucket run's scratch once it is in the bucket (a worker sees many). */
export async function dropScratchClip(store: RunStore, file: string | undefined): Promise<void> {
  if (store.kind !== "local" && file) await rm(join(store.dir, file), { force: true });
}

/** A bucket run's scratch folder kept in step with its store, for code that reads folders. */
export interface RunMirror {
  /** Brings what changed in the store: documents, journal lines appended since, new done clips. */
  pull(): Promise<void>;
  /** Uploads what was made in the folder (film, page, posters): see `keepOutputs`. */
  push(): Promise<string[]>;
}

/**
 * Mirrors a bucket run into its scratch folder for a reader of folders (the review page): the
 * first pull brings its outputs (posters, film, page); every pull brings run.json and picks.json
 * when they changed, the journal lines appended since the last (read from a cursor), and each
 * done clip once. Pulls run one at a time. A folder run is its own mirror: both do nothing.
 */
export function createRunMirror(store: RunStore): RunMirror {
  const journal = join(store.dir, "journal.jsonl");
  const docs = new Map<RunDocument, string | undefined>();
  const fetched = new Set<string>();
  let cursor: string | undefined;
  let first = true;
  let pulling: Promise<void> = Promise.resolve();
  const pullOnce = async () => {
    await scratchReady(store);
    if (first) {
      await writeFile(journal, "");
      for (const a of await store.listArtifacts(""))
        if (!KEPT_ELSEWHERE.has(a.name) && !a.name.startsWith("clips/"))
          await store.getArtifact(a.name);
      first = false;
    }
    for (const name of ["run.json", "picks.json"] as const) {
      const text = await store.readDocument(name);
      if (text !== undefined && text !== docs.get(name))
        await writeFile(join(store.dir, name), text);
      docs.set(name, text);
    }
    const read = await store.readLog(cursor);
    if (read.lines.length) await appendFile(journal, read.lines.map((l) => `${l}\n`).join(""));
    cursor = read.cursor;
    if (docs.get("run.json") === undefined) return;
    for (const item of (await readRunReport(store.dir)).items)
      if (item.file && !fetched.has(item.file) && (await store.getArtifact(item.file)))
        fetched.add(item.file);
  };
  return {
    pull() {
      if (store.kind === "local") return Promise.resolve();
      // One at a time: two pulls from one cursor would append the same lines twice.
      const next = pulling.catch(() => {}).then(pullOnce);
      pulling = next;
      return next;
    },
    push: () => keepOutputs(store),
  };
}
