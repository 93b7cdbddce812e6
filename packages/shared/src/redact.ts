/**
 * Replaces every secret-looking value in a string with `***`: the current FAL_KEY, any
 * `Key …` / `Bearer …` authorization value, and explicitly passed secrets. Used on every
 * message that may reach a log, journal, report or thrown error.
 */
export function redactSecrets(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = text;
  const all = [...secrets, process.env.FAL_KEY, process.env.FAL_KEY_SECRET];
  for (const s of all) {
    if (s && s.length >= 4) out = out.split(s).join("***");
  }
  return out.replace(/\b(Key|Bearer)\s+[^\s"',}]+/g, "$1 ***");
}
