import type { ItemPhase, RunEvent } from "@hailuo/runner";

const FINISHED: ReadonlySet<ItemPhase> = new Set(["done", "cached", "failed", "interrupted"]);

/** m:ss (or h:mm:ss) for a duration in milliseconds. */
export function clock(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(h ? 2 : 1, "0");
  return `${h ? `${h}:` : ""}${mm}:${String(s % 60).padStart(2, "0")}`;
}

/** One clip that is neither waiting nor finished. */
export interface RunningRow {
  id: string;
  phase: ItemPhase;
  where: string;
  detail?: string;
}

/** What the live view knows of a run, from its events alone: counts, money, elapsed and ETA. */
export class RunTally {
  readonly startedAt: number;
  planned = false;
  private readonly phase = new Map<string, ItemPhase>();
  private readonly rows = new Map<string, RunningRow>();
  private billedUsd = 0;
  private atMostUsd = 0;
  private toFinish = 0;
  private finishedHere = 0;
  private firstWorkAt: number | undefined;

  constructor(private readonly now: () => number = Date.now) {
    this.startedAt = now();
  }

  /** Takes an event; returns a line to keep when a clip failed for good. */
  add(e: RunEvent): string | undefined {
    if (e.type === "plan") {
      this.planned = true;
      this.atMostUsd = e.estimateUsd;
      this.toFinish = e.toSubmit + e.reattach;
    } else if (e.type === "billed") this.billedUsd += e.usd;
    if (e.type !== "item") return undefined;
    const id = `${e.sceneId}#${e.take}`;
    const before = this.phase.get(id);
    this.phase.set(id, e.phase);
    if (FINISHED.has(e.phase)) {
      this.rows.delete(id);
      if (e.phase !== "cached" && before && !FINISHED.has(before)) this.finishedHere++;
      return e.phase === "failed" ? `${id} failed${e.detail ? `: ${e.detail}` : ""}` : undefined;
    }
    if (e.phase === "waiting") return undefined;
    this.firstWorkAt ??= this.now();
    const where =
      e.phase === "queued" && e.queuePosition !== undefined ? ` (position ${e.queuePosition})` : "";
    this.rows.set(id, { id, phase: e.phase, where, detail: e.detail });
    return undefined;
  }

  /** Clips in flight, oldest first. */
  running(): RunningRow[] {
    return [...this.rows.values()];
  }

  /** Milliseconds left at the pace so far, or undefined before the first clip finished. */
  etaMs(): number | undefined {
    const left = this.toFinish - this.finishedHere;
    if (left <= 0) return 0;
    if (!this.finishedHere || this.firstWorkAt === undefined) return undefined;
    return ((this.now() - this.firstWorkAt) / this.finishedHere) * left;
  }

  /** done/all · running · waiting · failed (zero counts left out), billed of the most it can cost, elapsed, ETA: fits 80 columns. */
  header(): string {
    const n = (p: ItemPhase) => [...this.phase.values()].filter((x) => x === p).length;
    const eta = this.etaMs();
    const counts: [number, string][] = [
      [this.rows.size, "running"],
      [n("waiting"), "waiting"],
      [n("failed"), "failed"],
    ];
    return [
      `${n("done") + n("cached")}/${this.phase.size} done`,
      ...counts.filter(([k]) => k > 0).map(([k, label]) => `${k} ${label}`),
      `$${this.billedUsd.toFixed(2)} of $${this.atMostUsd.toFixed(2)} billed`,
      `${clock(this.now() - this.startedAt)} elapsed, ETA ${eta === undefined ? "—" : clock(eta)}`,
    ].join(" · ");
  }
}
