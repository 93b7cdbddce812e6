import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManifestError, loadManifest, parseManifest } from "./index.js";

// Files are read as streams (64 KiB chunks): these manifests are a few hundred KiB, so rows, lines
// and multi-byte characters fall across chunk boundaries.
let dir: string;
beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), "hailuo-stream-"))));
afterAll(() => rm(dir, { recursive: true, force: true }));
const now = new Date(2026, 10, 24, 9, 30);

async function problems(file: string): Promise<string[]> {
  const err = await loadManifest(file, { now }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ManifestError);
  return (err as ManifestError).problems.map(
    (p) => `${p.line ?? "-"}:${p.column ?? "-"} ${p.field}: ${p.message}`,
  );
}

describe("CSV and JSONL read from files as streams", () => {
  const rows = 4_000;
  const prompt = (i: number) => `café ☕ at dusk, «row ${i}» — {{mood}} light`;

  it("gives the same manifest as the text, with every multi-byte character intact", async () => {
    const csv = `prompt,mood,duration\n${Array.from({ length: rows }, (_, i) => `"${prompt(i)}",warm,${i % 2 ? 10 : 6}`).join("\r\n")}\n`;
    const jsonl = Array.from({ length: rows }, (_, i) =>
      JSON.stringify({
        prompt: prompt(i).replace("{{mood}}", "warm"),
        duration: i % 2 ? "10" : "6",
      }),
    ).join("\n");
    for (const [name, text] of [
      ["board.csv", csv],
      ["board.jsonl", jsonl],
    ] as const) {
      const file = join(dir, name);
      await writeFile(file, text);
      const streamed = await loadManifest(file, { now });
      expect(streamed.scenes).toHaveLength(rows);
      expect(streamed.scenes[rows - 1]!.prompt).toBe("café ☕ at dusk, «row 3999» — warm light");
      expect(streamed).toEqual(parseManifest(text, { file, now }));
    }
  });

  it("names the line of a bad row far into the file, and a duplicate header column", async () => {
    const csv = join(dir, "bad.csv");
    await writeFile(
      csv,
      `prompt,duration\n${Array.from({ length: rows }, (_, i) => `"café ☕ row ${i}",${i === rows - 2 ? 7 : 6}`).join("\n")}\n`,
    );
    expect(await problems(csv)).toEqual([
      expect.stringMatching(new RegExp(`^${rows}:2 scenes\\[${rows - 2}\\]\\.duration: `)),
    ]);
    const jsonl = join(dir, "bad.jsonl");
    await writeFile(
      jsonl,
      `${Array.from({ length: rows }, (_, i) => (i === rows - 1 ? "{oops" : JSON.stringify({ prompt: `row ${i}` }))).join("\n")}\n`,
    );
    expect(await problems(jsonl)).toEqual([
      expect.stringMatching(new RegExp(`^${rows}:- : not valid JSON`)),
    ]);
    const dupe = join(dir, "dupe.csv");
    await writeFile(dupe, "prompt,mood,mood\na,b,c\n");
    expect(await problems(dupe)).toEqual([
      expect.stringMatching(/^1:3 mood: column "mood" appears twice/),
    ]);
    // A quoting error of the streaming parser (loaded on first use) keeps its line too.
    const quote = join(dir, "quote.csv");
    await writeFile(
      quote,
      `prompt\n${Array.from({ length: rows }, (_, i) => (i === rows - 1 ? '"bad"x' : `row ${i}`)).join("\n")}\n`,
    );
    expect(await problems(quote)).toEqual([
      expect.stringMatching(new RegExp(`^${rows + 1}:- : not valid CSV: Invalid Closing Quote`)),
    ]);
  });

  it("refuses bytes that are not UTF-8 anywhere in the file, not only in its first KiB", async () => {
    for (const [name, row] of [
      ["broken.csv", (i: number) => `row ${i}`],
      ["broken.jsonl", (i: number) => JSON.stringify({ prompt: `row ${i}` })],
    ] as const) {
      const file = join(dir, name);
      const head = Buffer.from(
        `${name.endsWith(".csv") ? "prompt\n" : ""}${Array.from({ length: rows }, (_, i) => row(i)).join("\n")}\n`,
      );
      await writeFile(file, Buffer.concat([head, Buffer.from([0xc3, 0x28]), Buffer.from("\n")]));
      expect(await problems(file)).toEqual([
        "-:- : not a manifest: this is binary data, not YAML, CSV or JSONL text",
      ]);
    }
  });
});
