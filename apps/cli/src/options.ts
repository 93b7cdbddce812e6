import { UsageError } from "./exit-codes.js";

/**
 * Reads a numeric command-line option, or throws a UsageError naming the flag (exit 2).
 * `undefined` stays undefined so the library's default applies.
 */
export function numberOption(
  name: string,
  value: string | undefined,
  { min = 0, max = Number.MAX_SAFE_INTEGER, integer = true } = {},
): number | undefined {
  if (value === undefined) return undefined;
  // Plain decimals only: Number() also reads "0x10" (16), "1e3", "0b1" and " 5 ", and a money flag
  // must mean what a person reads. Fifteen digits keep every accepted value exact in a double.
  const plain = integer ? /^\d{1,15}$/ : /^\d{1,15}(\.\d{1,15})?$|^\.\d{1,15}$/;
  const n = Number(value);
  if (!plain.test(value) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
    throw new UsageError(
      `--${name} must be ${integer ? "a whole number" : "a plain decimal number"} ${range}, got "${value}"`,
    );
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
