import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";

const README = readFileSync(join(import.meta.dirname, "../../../README.md"), "utf8");

/** A generated block of the README, between `<!-- name -->` and `<!-- /name -->`. */
export function readmeBlock(name: string): string {
  const m = new RegExp(`<!-- ${name} -->\\n([\\s\\S]*?)<!-- /${name} -->`).exec(README);
  if (!m) throw new Error(`README.md has no <!-- ${name} --> block`);
  return m[1]!.trim();
}

/** The README's JSON output table: each type with its required and optional fields. */
export function documentedEvents(): Map<string, { required: string[]; optional: string[] }> {
  const rows = readmeBlock("json-events").split("\n").slice(2);
  return new Map(
    rows.map((row) => {
      const [, type, fields] = row.split("|").map((c) => c.trim());
      const names = fields!.split(",").map((f) => f.trim());
      return [
        type!.replaceAll("`", ""),
        {
          required: names.filter((f) => !f.endsWith("?")),
          optional: names.filter((f) => f.endsWith("?")).map((f) => f.slice(0, -1)),
        },
      ];
    }),
  );
}

/** Every stdout line is JSON of a documented type with exactly the documented fields; returns the parsed events. */
export function expectDocumented(stdout: string): Record<string, unknown>[] {
  const doc = documentedEvents();
  return stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const e = JSON.parse(line) as Record<string, unknown>;
      const d = doc.get(String(e.type));
      expect(d, `event type ${String(e.type)} is in the README`).toBeDefined();
      const keys = Object.keys(e).filter((k) => k !== "type" && e[k] !== undefined);
      for (const k of keys)
        expect([...d!.required, ...d!.optional], `${String(e.type)}.${k} is documented`).toContain(
          k,
        );
      for (const k of d!.required) expect(keys, `${String(e.type)} has ${k}`).toContain(k);
      return e;
    });
}
