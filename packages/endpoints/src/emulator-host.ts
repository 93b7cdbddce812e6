/**
 * The emulator's one routing rule: a request meant for `https://<host>/<path>` goes to
 * `<emulator>/__host/<host>/<path>`, so one local server can stand in for every fal host.
 */
export function emulatorHostUrl(emulatorUrl: string, url: string): string {
  const u = new URL(url);
  return `${emulatorUrl.replace(/\/+$/, "")}/__host/${u.host}${u.pathname}${u.search}`;
}

/** The fal host and path an emulator path names (`/__host/<host>/<path>`), or undefined. */
export function hostFromEmulatorPath(pathname: string): { host: string; path: string } | undefined {
  if (!pathname.startsWith("/__host/")) return undefined;
  const [, , host, ...rest] = pathname.split("/");
  return host ? { host, path: `/${rest.join("/")}` } : undefined;
}
