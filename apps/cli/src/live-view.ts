import cliTruncate from "cli-truncate";
import { createLogUpdate } from "log-update";
import { planLine, type ProgressView } from "./progress-view.js";
import { RunTally, clock } from "./run-tally.js";

const ICON: Record<string, string> = {
  retrying: "↻",
  queued: "…",
  submitting: "→",
  in_progress: "▶",
  downloading: "↓",
  verifying: "✓",
};

/**
 * The terminal view: a header (counts, elapsed, ETA, billed or emulated so far), then every
 * running clip; finished clips collapse into the counts (a failure stays as a line with its
 * reason), and every row is cut to the terminal's width so nothing wraps and no copy is left in
 * the scrollback.
 */
export function liveView(): ProgressView {
  const log = createLogUpdate(process.stderr, { showCursor: true });
  const tally = new RunTally();
  let mediaStep: { step: string; percent: number; since: number } | undefined;
  let dirty = false;
  let stopped = false;
  let paused = false;
  let emulated = false;
  // The tally says "$0.27 of $0.81 billed"; an emulated run's says "$0.27/$0.81 emulated" (as
  // short: the header fits 80 columns) and never claims a bill.
  const header = () =>
    emulated
      ? tally.header().replace(/ of (\$\d+\.\d\d) billed( · |$)/, "/$1 emulated$2")
      : tally.header();
  const fit = (row: string) => cliTruncate(row, Math.max(20, (process.stderr.columns ?? 80) - 1));
  const render = () => {
    dirty = false;
    if (stopped || paused) return;
    // Phase first: when a long id is cut at the terminal's edge, what the clip is doing stays.
    const running = tally
      .running()
      .map(
        (r) =>
          `${ICON[r.phase] ?? "…"} ${`${r.phase}${r.where}`.padEnd(12)} ${r.id}${r.detail ? `  ${r.detail}` : ""}`,
      );
    // Every running clip stays in view: past the screen's height the rest is one counted line.
    const room = Math.max(1, (process.stderr.rows ?? 24) - 3);
    const rows =
      running.length > room
        ? [...running.slice(0, room - 1), `… ${running.length - room + 1} more running`]
        : running;
    const media = mediaStep ? [`▸ ${mediaStep.step} ${Math.floor(mediaStep.percent)}%`] : [];
    log([...(tally.planned ? [header()] : []), ...rows, ...media].map(fit).join("\n"));
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
      else if (e.type === "plan") above(planLine(e, emulated));
      else dirty = true;
    },
    line: above,
    emulated: () => void (emulated = true),
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
