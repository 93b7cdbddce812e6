import { setMaxListeners } from "node:events";
import type { RunEvent } from "./events.js";

/** How a run stops: the first signal ends new submits and waiting; submits already sent get a grace period. */
export interface StopControl {
  /** Aborts new submits and waiting (a first Ctrl-C, or a run-stopping error via `stop`). */
  signal: AbortSignal;
  /** Aborts submits already on the wire: after the grace period, or at once on the hard signal. */
  submitSignal: AbortSignal;
  /** Stops the run with a reason (auth, full disk …); submits on the wire still get their answers. */
  stop(reason: unknown): void;
  /** Stops the run and aborts submits on the wire at once: the run is no longer this process's. */
  lose(reason: unknown): void;
  /** A submit left (true) or came back (false). */
  onSubmitInFlight(inFlight: boolean): void;
  dispose(): void;
}

/**
 * Wires a run's stop signals: `signal` (first Ctrl-C) stops new submits and waiting at once and
 * starts `graceMs` for submits already sent, so their request ids reach the journal; `hardSignal`
 * (second Ctrl-C) aborts those too.
 */
export function createStopControl(options: {
  signal?: AbortSignal;
  hardSignal?: AbortSignal;
  graceMs: number;
  emit: (e: RunEvent) => void;
}): StopControl {
  const run = new AbortController();
  const submits = new AbortController();
  // Every clip of a run listens on these at once (thousands): not the leak Node warns about past 10.
  setMaxListeners(0, run.signal, submits.signal);
  let inFlight = 0;
  let grace: NodeJS.Timeout | undefined;
  const onSoft = () => {
    run.abort(options.signal?.reason);
    if (inFlight > 0)
      options.emit({
        type: "warning",
        message: `waiting up to ${Math.round(options.graceMs / 1000)} s for ${inFlight} submit(s) already sent, so their request ids reach the journal`,
      });
    grace = setTimeout(() => submits.abort(), options.graceMs);
  };
  const onHard = () => submits.abort();
  options.signal?.addEventListener("abort", onSoft, { once: true });
  options.hardSignal?.addEventListener("abort", onHard, { once: true });
  if (options.signal?.aborted) onSoft();
  if (options.hardSignal?.aborted) onHard();
  return {
    signal: run.signal,
    submitSignal: submits.signal,
    stop: (reason) => run.abort(reason),
    lose(reason) {
      run.abort(reason);
      submits.abort(reason);
    },
    onSubmitInFlight: (on) => (inFlight += on ? 1 : -1),
    dispose() {
      if (grace) clearTimeout(grace);
      options.signal?.removeEventListener("abort", onSoft);
      options.hardSignal?.removeEventListener("abort", onHard);
    },
  };
}
