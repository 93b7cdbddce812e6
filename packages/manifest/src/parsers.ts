import { createRequire } from "node:module";
import type * as Yaml from "yaml";
import type * as CsvSync from "csv-parse/sync";

// The parsers are loaded on first use, so commands that never parse a manifest (`status`,
// `resume`, the media stage) start without them: yaml alone is seventy files. Both ship CommonJS
// builds, which a plain require loads synchronously for the synchronous `parseManifest`.
const load = createRequire(import.meta.url);
let yamlModule: typeof Yaml | undefined;
let csvSyncModule: typeof CsvSync | undefined;

/** The yaml library. */
export function yaml(): typeof Yaml {
  return (yamlModule ??= load("yaml") as typeof Yaml);
}

/** csv-parse's synchronous parser. */
export function csvSync(): typeof CsvSync {
  return (csvSyncModule ??= load("csv-parse/sync") as typeof CsvSync);
}

/** csv-parse's streaming parser. */
export async function csvStream(): Promise<typeof import("csv-parse")> {
  return import("csv-parse");
}

/** The line csv-parse reports for one of its errors (its CsvError, of whichever build threw it). */
export function csvErrorLine(error: unknown): number | undefined {
  const e = error as { code?: unknown; lines?: unknown };
  return typeof e.code === "string" && e.code.startsWith("CSV_") && typeof e.lines === "number"
    ? e.lines
    : undefined;
}
