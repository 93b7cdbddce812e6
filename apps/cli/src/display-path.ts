import { relative, resolve } from "node:path";

/** A path as people want to read it: relative below the current folder, absolute elsewhere. */
export function displayPath(path: string): string {
  const rel = relative(process.cwd(), resolve(path));
  return !rel ? "." : rel.startsWith("..") ? resolve(path) : rel;
}
