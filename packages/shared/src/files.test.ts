import { appendFile, mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { JsonlFile, readJsonl, readJsonlFrom } from "./index.js";

describe("JsonlFile", () => {
  it("appends made while a write is under way share its successor's one sync, land whole and in order", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hailuo-jsonl-"));
    try {
      const path = join(dir, "j.jsonl");
      const file = await JsonlFile.open(path);
      // Counts fdatasync calls on the real FileHandle (it still syncs): observed, not replaced.
      const other = await open(path, "r");
      const syncs = vi.spyOn(
        Object.getPrototypeOf(other) as { datasync(): Promise<void> },
        "datasync",
      );
      await other.close();
      try {
        await Promise.all(
          Array.from({ length: 100 }, (_, i) => file.appendLine(JSON.stringify({ i }))),
        );
        // The first line goes out alone; the 99 appended meanwhile go out together.
        expect(syncs).toHaveBeenCalledTimes(2);
        await file.appendLine(JSON.stringify({ i: 100 }));
        await file.close();
      } finally {
        syncs.mockRestore();
      }
      const { records, tornLines } = await readJsonl<{ i: number }>(path);
      expect(tornLines).toBe(0);
      expect(records.map((r) => r.i)).toEqual(Array.from({ length: 101 }, (_, i) => i));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

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
      await appendFile(file, "3}\n");
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
