const WEEKDAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];

/** Variables every run provides: `date` (YYYY-MM-DD), `weekday`, `time` (HH:MM), `datetime`, `year`, `month`, `day`. */
export function runVariables(now: Date = new Date()): Record<string, string> {
  const pad = (n: number) => String(n).padStart(2, "0");
  const date = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
  const time = `${pad(now.getHours())}:${pad(now.getMinutes())}`;
  return {
    date,
    time,
    datetime: `${date} ${time}`,
    weekday: WEEKDAYS[now.getDay()]!,
    year: String(now.getFullYear()),
    month: pad(now.getMonth() + 1),
    day: pad(now.getDate()),
  };
}

/**
 * Replaces `{{name}}` with its value. Unknown names are collected, never replaced by an empty
 * string, so a typo cannot silently change a paid prompt.
 */
export function renderTemplate(text: string, vars: Record<string, string>): { text: string; missing: string[] } {
  const missing: string[] = [];
  const out = text.replace(/\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}/g, (whole, name: string) => {
    const value = vars[name];
    if (value === undefined) {
      missing.push(name);
      return whole;
    }
    return value;
  });
  return { text: out, missing };
}
