import type { RunEvent, RunReport } from "@hailuo/runner";
import { emitJson } from "./events.js";

/** How progress is shown. */
export type ViewMode = "tty" | "lines" | "json";

/** Picks the view: `--json` for machines, a live view on a terminal, one line per event otherwise. */
export function chooseView(json: boolean): ViewMode {
  // A terminal that reports no width (some CI pseudo-terminals) cannot redraw lines: plain lines then.
  return json
    ? "json"
    : process.stderr.isTTY && (process.stderr.columns ?? 0) > 0 && !process.env.CI
      ? "tty"
      : "lines";
}

/** A progress display fed by run events, free text lines and media steps. */
export interface ProgressView {
  onEvent(e: RunEvent): void;
  /** A line that stays (above the live region on a terminal). */
  line(text: string): void;
  /** Progress of one media step (thumbnails, film), 0–100. */
  media(step: string, percent: number): void;
  /** Clears the live region and stops drawing (a question is asked), until `resume`. */
  pause(): void;
  resume(): void;
  stop(): void;
  /** The run goes to an emulator: its money is shown as emulated, nothing billed. */
  emulated(): void;
}

/**
 * Creates the view for a mode. The terminal view's libraries (log-update, cli-truncate and theirs)
 * are loaded only for a terminal: a log or a pipe starts without them.
 */
export async function createProgressView(mode: ViewMode): Promise<ProgressView> {
  if (mode === "json") return jsonView();
  if (mode === "lines") return linesView();
  return (await import("./live-view.js")).liveView();
}

function jsonView(): ProgressView {
  const lastTenth = new Map<string, number>();
  return {
    onEvent: emitJson,
    line: (message) => emitJson({ type: "log", message }),
    media(step, percent) {
      // Every tenth is plenty for a machine reader; ffmpeg reports many times a second.
      const tenth = Math.floor(percent / 10);
      if (lastTenth.get(step) === tenth) return;
      lastTenth.set(step, tenth);
      emitJson({ type: "media_progress", step, percent: Math.round(percent) });
    },
    pause: () => {},
    resume: () => {},
    stop: () => {},
    // Machines read `billed` on the target event and `amounts` in the report.
    emulated: () => {},
  };
}

function linesView(): ProgressView {
  const lastPhase = new Map<string, string>();
  const started = new Set<string>();
  const finished = new Set<string>();
  let emulated = false;
  const say = (text: string) => process.stderr.write(`${text}\n`);
  return {
    onEvent(e) {
      if (e.type === "item") {
        // Every clip starts out waiting, and reused ones are counted by the plan line: in plain lines each would be noise.
        if (e.phase === "waiting" || e.phase === "cached") return;
        const id = `${e.sceneId}#${e.take}`;
        const sig = `${e.phase}:${e.queuePosition ?? ""}`;
        if (lastPhase.get(id) === sig && e.phase !== "retrying") return;
        lastPhase.set(id, sig);
        say(
          `${id} ${e.phase}${e.queuePosition !== undefined ? ` (position ${e.queuePosition})` : ""}${e.detail ? `: ${e.detail}` : ""}`,
        );
      } else if (e.type === "plan") say(planLine(e, emulated));
      else if (e.type === "warning") say(`warning: ${e.message}`);
    },
    line: say,
    media(step, percent) {
      // A log file wants a line when a step starts and when it ends, not every percent.
      if (!started.has(step)) say(`${step}: started`);
      started.add(step);
      // A step may report its end more than once (the film: its last piece, then its join).
      if (percent >= 100 && !finished.has(step)) say(`${step}: done`);
      if (percent >= 100) finished.add(step);
    },
    pause: () => {},
    resume: () => {},
    stop: () => {},
    emulated: () => void (emulated = true),
  };
}

/**
 * A run's money as people read it: "$2.43 billed", or for a run against an emulator
 * "emulated, nothing billed ($2.43 at fal's price)".
 */
export function spentWords(usd: number, amounts: RunReport["amounts"]): string {
  return amounts === "emulated"
    ? `emulated, nothing billed ($${usd.toFixed(2)} at fal's price)`
    : `$${usd.toFixed(2)} billed`;
}

/** The plan line: what a run will reuse, re-attach and generate, and where. */
export function planLine(e: Extract<RunEvent, { type: "plan" }>, emulated = false): string {
  const budget = e.budgetUsd !== undefined ? ` (budget $${e.budgetUsd.toFixed(2)})` : "";
  const billed = emulated ? " at fal's price (emulated, nothing billed)" : "";
  return `${e.items} clip(s): ${e.cached} already done, ${e.reattach} re-attached, ${e.toSubmit} to generate for $${e.estimateUsd.toFixed(2)}${billed}${budget} → ${e.runDir}`;
}
