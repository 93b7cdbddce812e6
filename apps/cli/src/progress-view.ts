import cliTruncate from "cli-truncate";
import { createLogUpdate } from "log-update";
import type { RunEvent } from "@hailuo/runner";
import { emitJson } from "./events.js";
import { RunTally, clock } from "./run-tally.js";

/** How progress is shown. */
export type ViewMode = "tty" | "lines" | "json";

/** Picks the view: `--json` for machines, a live view on a terminal, one line per event otherwise. */
export function chooseView(json: boolean): ViewMode {
  // A terminal that reports no width (some CI pseudo-terminals) cannot redraw lines: plain lines then.
  return json ? "json" : process.stderr.isTTY && (process.stderr.columns ?? 0) > 0 && !process.env.CI ? "tty" : "lines";
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
}

/** Creates the view for a mode. */
export function createProgressView(mode: ViewMode): ProgressView {
  if (mode === "json") return jsonView();
  if (mode === "lines") return linesView();
  return liveView();
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
  };
}

function linesView(): ProgressView {
  const lastPhase = new Map<string, string>();
  const started = new Set<string>();
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
        say(`${id} ${e.phase}${e.queuePosition !== undefined ? ` (position ${e.queuePosition})` : ""}${e.detail ? `: ${e.detail}` : ""}`);
      } else if (e.type === "plan") say(planLine(e));
      else if (e.type === "warning") say(`warning: ${e.message}`);
    },
    line: say,
    media(step, percent) {
      // A log file wants a line when a step starts and when it ends, not every percent.
      if (!started.has(step)) say(`${step}: started`);
      started.add(step);
      if (percent >= 100) say(`${step}: done`);
    },
    pause: () => {},
    resume: () => {},
    stop: () => {},
  };
}

const ICON: Record<string, string> = { retrying: "↻", queued: "…", submitting: "→", in_progress: "▶", downloading: "↓", verifying: "✓" };

/**
 * The terminal view: a header (counts, elapsed, ETA, billed so far), then every running clip;
 * finished clips collapse into the counts (a failure stays as a line with its reason), and every
 * row is cut to the terminal's width so nothing wraps and no copy is left in the scrollback.
 */
function liveView(): ProgressView {
  const log = createLogUpdate(process.stderr, { showCursor: true });
  const tally = new RunTally();
  let mediaStep: { step: string; percent: number; since: number } | undefined;
  let dirty = false;
  let stopped = false;
  let paused = false;
  const fit = (row: string) => cliTruncate(row, Math.max(20, (process.stderr.columns ?? 80) - 1));
  const render = () => {
    dirty = false;
    if (stopped || paused) return;
    // Phase first: when a long id is cut at the terminal's edge, what the clip is doing stays.
    const running = tally.running().map((r) => `${ICON[r.phase] ?? "…"} ${`${r.phase}${r.where}`.padEnd(12)} ${r.id}${r.detail ? `  ${r.detail}` : ""}`);
    // Every running clip stays in view: past the screen's height the rest is one counted line.
    const room = Math.max(1, (process.stderr.rows ?? 24) - 3);
    const rows = running.length > room ? [...running.slice(0, room - 1), `… ${running.length - room + 1} more running`] : running;
    const media = mediaStep ? [`▸ ${mediaStep.step} ${Math.floor(mediaStep.percent)}%`] : [];
    log([...(tally.planned ? [tally.header()] : []), ...rows, ...media].map(fit).join("\n"));
  };
  const above = (text: string) => {
    if (stopped || paused) return void process.stderr.write(`${text}\n`);
    log.clear();
    process.stderr.write(`${text}\n`);
    render();
  };
  // The clock in the header moves even when no event comes; unref'd so it never keeps the process up.
  const ticker = setInterval(() => dirty || render(), 1000).unref();
  const throttle = setInterval(() => dirty && render(), 100).unref();
  return {
    onEvent(e) {
      const failed = tally.add(e);
      if (failed) above(`✖ ${failed}`);
      else if (e.type === "warning") above(`warning: ${e.message}`);
      else if (e.type === "plan") above(planLine(e));
      else dirty = true;
    },
    line: above,
    pause() {
      log.clear();
      paused = true;
    },
    resume() {
      paused = false;
      render();
    },
    media(step, percent) {
      if (mediaStep?.step === step) mediaStep.percent = percent;
      else {
        if (mediaStep) above(`✔ ${mediaStep.step} (${clock(Date.now() - mediaStep.since)})`);
        mediaStep = { step, percent, since: Date.now() };
      }
      dirty = true;
    },
    stop() {
      if (stopped) return;
      clearInterval(ticker);
      clearInterval(throttle);
      if (mediaStep) {
        const done = mediaStep;
        mediaStep = undefined;
        above(`✔ ${done.step} (${clock(Date.now() - done.since)})`);
      }
      if (tally.planned) render();
      else log.clear();
      stopped = true;
      log.done();
    },
  };
}

function planLine(e: Extract<RunEvent, { type: "plan" }>): string {
  const budget = e.budgetUsd !== undefined ? ` (budget $${e.budgetUsd.toFixed(2)})` : "";
  return `${e.items} clip(s): ${e.cached} already done, ${e.reattach} re-attached, ${e.toSubmit} to generate for $${e.estimateUsd.toFixed(2)}${budget} → ${e.runDir}`;
}
