/** A moment's calendar fields in a time zone (the process's own when none is given). */
export function calendarParts(now: Date, timeZone?: string): { year: string; month: string; day: string; hour: string; minute: string; weekday: string } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-GB", { timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23", weekday: "long" })
      .formatToParts(now)
      .map((p) => [p.type, p.value]),
  );
  return { year: parts.year!, month: parts.month!, day: parts.day!, hour: parts.hour!, minute: parts.minute!, weekday: parts.weekday!.toLowerCase() };
}

/**
 * Variables every run provides: `date` (YYYY-MM-DD), `weekday`, `time` (HH:MM), `datetime`,
 * `year`, `month`, `day`, in `timeZone` (a scheduled job's) or the process's own.
 */
export function runVariables(now: Date = new Date(), timeZone?: string): Record<string, string> {
  const p = calendarParts(now, timeZone);
  const date = `${p.year}-${p.month}-${p.day}`;
  const time = `${p.hour}:${p.minute}`;
  return { date, time, datetime: `${date} ${time}`, weekday: p.weekday, year: p.year, month: p.month, day: p.day };
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
