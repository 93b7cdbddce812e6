import { createInterface } from "node:readline/promises";
import { HailuoError } from "@hailuo/shared";
import { numberOption } from "./options.js";

/** Above this many dollars a billed run on a terminal asks first, unless `--yes`. */
export const DEFAULT_CONFIRM_ABOVE_USD = 1;

/** When a run must ask before spending: billed backend, a person at a terminal, above the amount, no --yes. */
export function mustConfirm(o: {
  billed: boolean;
  usd: number;
  yes?: boolean;
  confirmAbove?: string;
}): boolean {
  const above =
    numberOption("confirm-above", o.confirmAbove ?? process.env.HAILUO_CONFIRM_ABOVE, {
      integer: false,
    }) ?? DEFAULT_CONFIRM_ABOVE_USD;
  // Non-interactive runs (cron, CI, a pipe) never block on a question nobody can answer.
  return (
    o.billed && !o.yes && o.usd > above && Boolean(process.stdin.isTTY && process.stderr.isTTY)
  );
}

/**
 * Asks "spend up to $X on <target>? [y/N]" on the terminal; anything but yes (or Ctrl-C)
 * refuses with `declined`, exit 2, nothing submitted.
 */
export async function askToSpend(question: string): Promise<void> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const ctl = new AbortController();
  rl.on("SIGINT", () => ctl.abort());
  try {
    const answer = await rl.question(`${question} [y/N] `, { signal: ctl.signal }).catch(() => "");
    if (!/^y(es)?$/i.test(answer.trim()))
      throw new HailuoError(
        "declined",
        "not confirmed; nothing was submitted (pass --yes to skip the question)",
      );
  } finally {
    rl.close();
  }
}
