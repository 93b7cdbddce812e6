import { loadManifest, type Manifest } from "@hailuo/manifest";
import { formatProblem } from "@hailuo/shared";
import { emitJson } from "./events.js";

/**
 * Tells a manifest's warnings (a CSV column or a variable no prompt uses) on stderr, or as
 * `warning` events with `--json`: allowed, but said before anything is spent.
 */
export function tellWarnings(manifest: Manifest, json = false): Manifest {
  for (const w of manifest.warnings ?? []) {
    if (json) emitJson({ type: "warning", message: formatProblem(w) });
    else process.stderr.write(`warning: ${formatProblem(w)}\n`);
  }
  return manifest;
}

/** Loads a manifest and tells its warnings. */
export async function loadManifestTelling(
  file: string,
  opts: { vars?: Record<string, string>; json?: boolean },
): Promise<Manifest> {
  return tellWarnings(await loadManifest(file, { vars: opts.vars }), opts.json);
}
