import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import type { FilmFile } from "@hailuo/publish";
import {
  buildReport,
  journalPath,
  readJournal,
  readPicks,
  readRunFile,
  runLockHeld,
  type StoredRecord,
} from "@hailuo/runner";
import { HailuoError } from "@hailuo/shared";

/** One take as the page shows it. */
export interface TakeView {
  take: number;
  /** done, failed, running (a live request while a process holds the folder), stopped (live, nobody waiting), waiting. */
  status: "done" | "failed" | "running" | "stopped" | "waiting";
  prompt: string;
  costUsd: number;
  chosen: boolean;
  clip?: string;
  poster?: string;
  preview?: string;
  error?: string;
}

/** Everything the review page shows, rebuilt from the run folder on every change. */
export interface ReviewState {
  name: string;
  busy: boolean;
  totals: {
    clips: number;
    done: number;
    running: number;
    failed: number;
    waiting: number;
    billedUsd: number;
  };
  /** `emulated`: the run went to an emulator, which counted fal's price and billed nothing. */
  amounts: "billed" | "emulated";
  elapsedS?: number;
  etaS?: number;
  usdPerSecond: number;
  scenes: { id: string; prompt: string; duration: string; takes: TakeView[] }[];
  film?: FilmFile & { version: 1 };
  /** Actions started from the page that are still going, and what the last ones said. */
  jobs: { id: number; what: string; state: "running" | "ok" | "failed"; message?: string }[];
}

/** Files the state depends on: when none of them changed, the state did not either. */
export async function folderSignature(runDir: string): Promise<string> {
  const parts = await Promise.all(
    ["journal.jsonl", "picks.json", "run.json", "film.mp4.json", "index.html"].map((f) =>
      stat(join(runDir, f)).then(
        (s) => `${s.size}:${s.mtimeMs}`,
        () => "-",
      ),
    ),
  );
  return parts.join("|");
}

/** The page's state of a run folder (no network). */
export async function reviewState(
  runDir: string,
  usdPerSecond: number,
  jobs: ReviewState["jobs"],
): Promise<ReviewState> {
  const run = await readRunFile(runDir);
  if (!run) throw new HailuoError("not_a_run", `${runDir} is not a run folder (no run.json)`);
  const { manifest, backend } = run;
  // One read of the journal serves the report, the owner check and the pace.
  const { records } = await readJournal(journalPath(runDir));
  const report = buildReport(manifest, runDir, records, {
    picks: await readPicks(runDir),
    backend,
  });
  // A local run holds run.lock; a distributed one owns the folder from "enqueued" to "finished".
  const locked =
    (await runLockHeld(runDir)) ||
    records.findLast((r) => r.t === "enqueued" || r.t === "finished")?.t === "enqueued";
  const thumb = (file: string, ext: string) => {
    const rel = `thumbs/${basename(file, ".mp4")}.${ext}`;
    return existsSync(join(runDir, rel)) ? rel : undefined;
  };
  const status = (s: string): TakeView["status"] =>
    s === "done" || s === "cached"
      ? "done"
      : s === "failed"
        ? "failed"
        : s === "interrupted"
          ? locked
            ? "running"
            : "stopped"
          : "waiting";
  const scenes = manifest.scenes.map((scene) => ({
    id: scene.id,
    prompt: scene.prompt,
    duration: scene.duration,
    takes: report.items
      .filter((i) => i.scene === scene.id)
      .map((i) => ({
        take: i.take,
        status: status(i.status),
        prompt: i.prompt,
        costUsd: i.costUsd,
        chosen: Boolean(i.chosen),
        ...(i.file
          ? {
              clip: i.file,
              poster: thumb(i.file, "jpg"),
              preview: thumb(i.file, manifest.thumbnails.preview === "webp" ? "webp" : "gif"),
            }
          : {}),
        ...(i.error ? { error: `${i.errorCode ?? "error"}: ${i.error}` } : {}),
      })),
  }));
  const all = scenes.flatMap((s) => s.takes);
  const count = (st: TakeView["status"]) => all.filter((t) => t.status === st).length;
  const totals = {
    clips: all.length,
    done: count("done"),
    running: count("running"),
    failed: count("failed"),
    waiting: count("waiting") + count("stopped"),
    billedUsd: report.totals.billedUsd,
  };
  const { elapsedS, etaS } = pace(records, locked, totals);
  const film = await readFile(
    join(runDir, `${manifest.assemble?.output ?? "film.mp4"}.json`),
    "utf8",
  ).then(
    (t) => JSON.parse(t) as FilmFile,
    () => undefined,
  );
  return {
    name: manifest.name,
    busy: locked,
    totals,
    amounts: report.amounts ?? "billed",
    elapsedS,
    etaS,
    usdPerSecond,
    scenes,
    ...(film ? { film } : {}),
    jobs,
  };
}

/** Elapsed since the running process started, and the time left at its pace so far. */
function pace(
  records: StoredRecord[],
  locked: boolean,
  t: ReviewState["totals"],
): { elapsedS?: number; etaS?: number } {
  if (!locked) return {};
  const start = records.findLastIndex((r) => r.t === "run" || r.t === "enqueued");
  if (start < 0) return {};
  const since = records.slice(start);
  const elapsedS = (Date.now() - Date.parse(since[0]!.at)) / 1000;
  const finished = since.filter((r) => r.t === "done" || r.t === "failed").length;
  const left = t.running + t.waiting;
  return { elapsedS, ...(finished ? { etaS: (elapsedS / finished) * left } : {}) };
}
