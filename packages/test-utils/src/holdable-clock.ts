import type { EmulatorClock } from "@hailuo/emulator";

/**
 * A clock for the emulator whose timers can be held: while held, generations started by the
 * emulator stand still (their timers are parked), and `release` starts them. A run can then be
 * kept "in flight" across a second fire or a second process without a sleep.
 */
export function holdableClock(): { clock: EmulatorClock; hold: () => void; release: () => void } {
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
  return {
    clock,
    hold: () => void (held = true),
    release() {
      held = false;
      for (const e of parked.splice(0)) if (!e.cancelled) e.timer = setTimeout(e.fn, e.ms);
    },
  };
}
