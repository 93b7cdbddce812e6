/** A moment's calendar fields in a time zone (the process's own when none is given). */
export function calendarParts(
  now: Date,
  timeZone?: string,
): { year: string; month: string; day: string; hour: string; minute: string; weekday: string } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-GB", {
      timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
      weekday: "long",
    })
      .formatToParts(now)
      .map((p) => [p.type, p.value]),
  );
  return {
    year: parts.year!,
    month: parts.month!,
    day: parts.day!,
    hour: parts.hour!,
    minute: parts.minute!,
    weekday: parts.weekday!.toLowerCase(),
  };
}

/**
 * Variables every run provides: `date` (YYYY-MM-DD), `weekday`, `time` (HH:MM), `datetime`,
 * `year`, `month`, `day`, in `timeZone` (a scheduled job's) or the process's own.
 */
export function runVariables(now: Date = new Date(), timeZone?: string): Record<string, string> {
  const p = calendarParts(now, timeZone);
  const date = `${p.year}-${p.month}-${p.day}`;
  const time = `${p.hour}:${p.minute}`;
  return {
    date,
    time,
    datetime: `${date} ${time}`,
    weekday: p.weekday,
    year: p.year,
    month: p.month,
    day: p.day,
  };
}

/** A `{{name}}` placeholder. */
export const TEMPLATE_VAR = /\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}/g;

/**
 * Expands variables that refer to other variables (`vars: { b: "{{a}} at dusk" }`), depth-first.
 * Returns the expanded values and a problem per variable that names an undefined one or a cycle.
 */
export function expandVars(
  vars: Record<string, string>,
  outer: Record<string, string> = {},
): { vars: Record<string, string>; problems: { name: string; message: string }[] } {
  const done: Record<string, string> = {};
  const problems: { name: string; message: string }[] = [];
  const resolve = (name: string, stack: string[]): string | undefined => {
    if (Object.hasOwn(done, name)) return done[name];
    if (!Object.hasOwn(vars, name)) return Object.hasOwn(outer, name) ? outer[name] : undefined;
    if (stack.includes(name)) {
      problems.push({
        name: stack[0]!,
        message: `variables refer to each other in a cycle: ${[...stack, name].join(" → ")}`,
      });
      return "";
    }
    const value = vars[name]!.replace(TEMPLATE_VAR, (whole, inner: string) => {
      const v = resolve(inner, [...stack, name]);
      if (v === undefined)
        problems.push({ name, message: `undefined variable {{${inner}}} in its value` });
      return v ?? whole;
    });
    done[name] = value;
    return value;
  };
  for (const name of Object.keys(vars)) resolve(name, []);
  return { vars: done, problems };
}

/**
 * Replaces `{{name}}` with its value. Unknown names are collected, never replaced by an empty
 * string, so a typo cannot silently change a paid prompt.
 */
export function renderTemplate(
  text: string,
  vars: Record<string, string>,
): { text: string; missing: string[] } {
  const missing: string[] = [];
  const out = text.replace(TEMPLATE_VAR, (whole, name: string) => {
    // Own keys only: `{{constructor}}` must not find Object.prototype's.
    const value = Object.hasOwn(vars, name) ? vars[name] : undefined;
    if (value === undefined) {
      missing.push(name);
      return whole;
    }
    return value;
  });
  return { text: out, missing };
}
