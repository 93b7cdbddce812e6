import { appendFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readJsonlFrom } from "./index.js";

describe("readJsonlFrom", () => {
  it("reads only what was appended since the last call, leaves a half-written line for later, skips a torn one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hailuo-jsonl-"));
    try {
      const file = join(dir, "j.jsonl");
      expect(await readJsonlFrom(file, 0)).toEqual({ records: [], offset: 0 });
      await writeFile(file, '{"a":1}\n{"a":2}\n{"a":');
      const first = await readJsonlFrom<{ a: number }>(file, 0);
      expect(first).toEqual({ records: [{ a: 1 }, { a: 2 }], offset: 16 });
      // The half line is finished by its writer: it comes with the next read, and only it.
      await appendFile(file, '3}\n');
      const second = await readJsonlFrom<{ a: number }>(file, first.offset);
      expect(second.records).toEqual([{ a: 3 }]);
      // A line torn by a crash, then the next record on a fresh line (as JsonlFile writes it).
      await appendFile(file, '{"a":\n{"a":4}\n');
      expect((await readJsonlFrom<{ a: number }>(file, second.offset)).records).toEqual([{ a: 4 }]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
