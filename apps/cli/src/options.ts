import { UsageError } from "./exit-codes.js";

/**
 * Reads a numeric command-line option, or throws a UsageError naming the flag (exit 2).
 * `undefined` stays undefined so the library's default applies.
 */
export function numberOption(name: string, value: string | undefined, { min = 0, integer = true } = {}): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be ${integer ? "a whole number" : "a number"} ≥ ${min}, got "${value}"`);
  }
  return n;
}

/** Reads repeated `--var name=value` flags. */
export function parseVars(pairs: string[]): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf("=");
    if (i <= 0) throw new UsageError(`--var takes name=value, got "${p}"`);
    vars[p.slice(0, i)] = p.slice(i + 1);
  }
  return vars;
}
