import { createLogUpdate } from "log-update";
import type { RunEvent } from "@hailuo/runner";

/** How run progress is shown. */
export type ViewMode = "tty" | "lines" | "json";

/** Picks the view: `--json` for machines, a live view on a terminal, one line per event otherwise. */
export function chooseView(json: boolean): ViewMode {
  // A terminal that reports no width (some CI pseudo-terminals) cannot redraw lines: plain lines then.
  return json ? "json" : process.stderr.isTTY && (process.stderr.columns ?? 0) > 0 && !process.env.CI ? "tty" : "lines";
}

const ICON: Record<string, string> = { done: "✔", cached: "≡", failed: "✖", interrupted: "■", retrying: "↻" };

/** A progress display fed by run events (and ffmpeg progress, as generic lines). */
export function createProgressView(mode: ViewMode): { onEvent: (e: RunEvent) => void; line: (text: string) => void; stop: () => void } {
  if (mode === "json") {
    return {
      onEvent: (e) => process.stdout.write(`${JSON.stringify(e)}\n`),
      line: (text) => process.stdout.write(`${JSON.stringify({ type: "log", message: text })}\n`),
      stop: () => {},
    };
  }
  const rows = new Map<string, string>();
  const lastPhase = new Map<string, string>();
  let header = "";
  if (mode === "lines") {
    return {
      onEvent(e) {
        if (e.type === "item") {
          // Every clip starts out waiting; in plain lines that is noise, the plan line says it.
          if (e.phase === "waiting") return;
          const id = `${e.sceneId}#${e.take}`;
          const sig = `${e.phase}:${e.queuePosition ?? ""}`;
          if (lastPhase.get(id) === sig && e.phase !== "retrying") return;
          lastPhase.set(id, sig);
          process.stderr.write(`${id} ${e.phase}${e.queuePosition !== undefined ? ` (position ${e.queuePosition})` : ""}${e.detail ? `: ${e.detail}` : ""}\n`);
        } else if (e.type === "plan") process.stderr.write(`${planLine(e)}\n`);
        else if (e.type === "warning") process.stderr.write(`warning: ${e.message}\n`);
      },
      line: (text) => process.stderr.write(`${text}\n`),
      stop: () => {},
    };
  }
  const log = createLogUpdate(process.stderr, { showCursor: true });
  let timer: NodeJS.Timeout | undefined;
  const render = () => {
    timer = undefined;
    const counts = new Map<string, number>();
    for (const phase of lastPhase.values()) counts.set(phase, (counts.get(phase) ?? 0) + 1);
    const footer = [...counts].map(([p, n]) => `${p} ${n}`).join(" · ");
    const body = [...rows.values()];
    const max = Math.max(5, (process.stderr.rows ?? 30) - 4);
    const shown = body.length > max ? [...body.slice(0, max - 1), `… ${body.length - max + 1} more`] : body;
    log([header, ...shown, footer].filter(Boolean).join("\n"));
  };
  const schedule = () => (timer ??= setTimeout(render, 100));
  return {
    onEvent(e) {
      if (e.type === "plan") header = planLine(e);
      else if (e.type === "item") {
        const id = `${e.sceneId}#${e.take}`;
        lastPhase.set(id, e.phase);
        const where = e.phase === "queued" && e.queuePosition !== undefined ? ` (position ${e.queuePosition})` : "";
        rows.set(id, `${ICON[e.phase] ?? "…"} ${id.padEnd(28)} ${e.phase}${where}${e.detail ? `  ${e.detail.slice(0, 80)}` : ""}`);
      } else if (e.type === "warning") {
        log.clear();
        process.stderr.write(`warning: ${e.message}\n`);
      }
      schedule();
    },
    line(text) {
      log.clear();
      process.stderr.write(`${text}\n`);
      schedule();
    },
    stop() {
      if (timer) clearTimeout(timer);
      render();
      log.done();
    },
  };
}

function planLine(e: Extract<RunEvent, { type: "plan" }>): string {
  const budget = e.budgetUsd !== undefined ? ` (budget $${e.budgetUsd.toFixed(2)})` : "";
  return `${e.items} clip(s): ${e.cached} already done, ${e.reattach} re-attached, ${e.toSubmit} to generate for $${e.estimateUsd.toFixed(2)}${budget} → ${e.runDir}`;
}
