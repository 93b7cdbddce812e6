import type { EmulatorClock } from "@hailuo/emulator";

/** An emulator clock whose timers a test can hold (see `holdableClock`). */
export interface HoldableClock {
  readonly clock: EmulatorClock;
  /** Parks every timer set from now on: requests started meanwhile stay queued or in progress. */
  hold(): void;
  /** Starts the parked timers (each with its whole delay, from now) and runs on real time again. */
  release(): void;
  /** Starts the timers parked so far, and keeps holding the ones set after: one step of a run. */
  releaseParked(): void;
}

/**
 * A clock for the emulator whose timers can be held: while held, generations started by the
 * emulator stand still (their timers are parked), and `release` starts them. A run can then be
 * kept "in flight" across a kill, a second fire or a second process, or until a page or screen
 * has seen it, however slow the machine, without a sleep.
 */
export function holdableClock(): HoldableClock {
  let held = false;
  const parked: { fn: () => void; ms: number; timer?: NodeJS.Timeout; cancelled: boolean }[] = [];
  const clock: EmulatorClock = {
    now: () => Date.now(),
    setTimeout(fn, ms) {
      const entry = { fn, ms, cancelled: false, timer: undefined as NodeJS.Timeout | undefined };
      if (held) parked.push(entry);
      else entry.timer = setTimeout(fn, ms);
      return entry;
    },
    clearTimeout(handle) {
      const entry = handle as (typeof parked)[number];
      entry.cancelled = true;
      clearTimeout(entry.timer);
    },
  };
  const startParked = () => {
    for (const e of parked.splice(0)) if (!e.cancelled) e.timer = setTimeout(e.fn, e.ms);
  };
  return {
    clock,
    hold: () => void (held = true),
    release() {
      held = false;
      startParked();
    },
    releaseParked: startParked,
  };
}

/**
 * A holdable clock that starts held: requests stay queued or in progress for as long as a test
 * needs to see them so, however slow the machine, then run on real time once released.
 */
export function heldClock(): HoldableClock {
  const c = holdableClock();
  c.hold();
  return c;
}
