/** Where one item stands, as shown to people. */
export type ItemPhase =
  | "waiting"
  /** Its images are made ready: a file checked, a last frame taken, an upload to fal's storage. */
  | "uploading"
  | "submitting"
  | "queued"
  | "in_progress"
  | "downloading"
  | "verifying"
  | "retrying"
  | "done"
  | "cached"
  | "failed"
  | "interrupted";

/** Events a run emits; they drive the progress display and `--json` output. */
export type RunEvent =
  | {
      type: "plan";
      runDir: string;
      items: number;
      unique: number;
      cached: number;
      reattach: number;
      toSubmit: number;
      estimateUsd: number;
      budgetUsd?: number;
    }
  | {
      type: "item";
      key: string;
      sceneId: string;
      take: number;
      phase: ItemPhase;
      requestId?: string;
      queuePosition?: number;
      detail?: string;
    }
  | { type: "warning"; message: string }
  /** A request finished with a video during this run: fal bills it (successful outputs only). */
  | { type: "billed"; key: string; sceneId: string; take: number; requestId: string; usd: number }
  | { type: "interrupted"; runDir: string }
  | {
      type: "finished";
      ok: number;
      failed: number;
      cached: number;
      interrupted: number;
      billedUsd: number;
      possibleDoubleChargeUsd: number;
    };
