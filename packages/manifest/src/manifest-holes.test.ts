import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ManifestError, loadManifest, parseManifest } from "./index.js";
import { problemsOf } from "./test-problems.js";

// Inputs that used to be accepted and paid for (issue: money safety, "manifest holes").

describe("manifest holes", () => {
  it("template look-ups see only own keys: {{constructor}} and {{toString}} are undefined variables", () => {
    const problems = problemsOf(
      `scenes:\n  - prompt: "A {{constructor}} on a hill, {{toString}}"\n`,
      "s.yaml",
    );
    expect(problems).toEqual([
      "2:13 scenes[0].prompt: undefined variable {{constructor}} (define it under vars:)",
      "2:13 scenes[0].prompt: undefined variable {{toString}} (define it under vars:)",
    ]);
  });

  it("expands variables inside variables, and names a cycle or an undefined inner variable", () => {
    const m = parseManifest(
      `vars:\n  a: dusk\n  b: "{{a}} light"\nscenes:\n  - prompt: "A pier at {{b}}"\n`,
      { file: "v.yaml" },
    );
    expect(m.scenes[0]!.prompt).toBe("A pier at dusk light");
    const problems = problemsOf(
      `vars:\n  a: "{{b}}"\n  b: "{{a}}"\n  c: "{{nope}}"\nscenes:\n  - prompt: "{{c}}"\n`,
      "v.yaml",
    );
    expect(
      problems.some((p) =>
        p.includes("vars.a: variables refer to each other in a cycle: a → b → a"),
      ),
    ).toBe(true);
    expect(
      problems.some((p) => p.includes("vars.c: undefined variable {{nope}} in its value")),
    ).toBe(true);
  });

  it("a CSV cell holding a placeholder is refused rather than sent as literal braces", () => {
    const problems = problemsOf(`prompt,look\n"A cat, {{look}}","{{b}} light"\n`, "c.csv");
    expect(problems).toEqual([
      "2:1 scenes[0].prompt: {{b}} is left in the prompt after templating (a variable's value holds a placeholder)",
    ]);
  });

  it("refuses a CSV header with a duplicate column and a JSONL line with a duplicate key, naming line and column", () => {
    expect(problemsOf(`id,prompt,duration,prompt\na,first,6,second\n`, "d.csv")).toEqual([
      `1:4 prompt: column "prompt" appears twice in the header row (columns 2 and 4); only one can hold the value`,
    ]);
    const jsonl = problemsOf(
      `{"prompt":"fine"}\n{"prompt":"one","duration":"6","prompt":"two"}\n`,
      "d.jsonl",
    );
    expect(jsonl).toHaveLength(1);
    expect(jsonl[0]).toMatch(/^2:\d+ : the same key appears twice in this object/);
    // Quotes and colons inside values, keys inside nested objects: still found, and no false alarm.
    const tricky = problemsOf(
      [
        String.raw`{"prompt":"say \"hi\": now","tags":["a\\"]}`,
        String.raw`{"prompt":"x","tags":{"k":"1","k":"2"}}`,
        String.raw`{"prompt":"a \":\" b","prompt":"c"}`,
      ].join("\n"),
      "t.jsonl",
    );
    expect(tricky.filter((p) => p.includes("appears twice")).map((p) => p.split(":")[0])).toEqual([
      "2",
      "3",
    ]);
  });

  it("refuses a prompt of only invisible characters and a prompt holding a control character", () => {
    const problems = problemsOf(
      `scenes:\n  - id: zw\n    prompt: "\\u200B\\u200C\\u2060\\uFEFF "\n  - id: nul\n    prompt: "A cat\\u0000 on a mat"\n  - id: ok\n    prompt: "Two lines\\nare fine"\n`,
      "z.yaml",
    );
    expect(problems).toEqual([
      "3:13 scenes[0].prompt: prompt must not be empty (it holds only invisible characters)",
      "5:13 scenes[1].prompt: prompt holds a control character (U+0000 at character 6); remove it",
    ]);
  });

  it("checks the audio bed at validate: a missing file is named with file, line and field", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hailuo-audio-"));
    try {
      const file = join(dir, "board.yaml");
      await writeFile(
        file,
        `scenes:\n  - prompt: A lighthouse\nassemble:\n  audio:\n    file: music.mp3\n`,
      );
      const err = await loadManifest(file).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ManifestError);
      expect((err as ManifestError).problems[0]).toMatchObject({
        file,
        line: 5,
        field: "assemble.audio.file",
      });
      expect((err as ManifestError).problems[0]!.message).toContain(join(dir, "music.mp3"));
      await writeFile(join(dir, "music.mp3"), "not checked for content here");
      await expect(loadManifest(file)).resolves.toMatchObject({
        assemble: { audio: { file: "music.mp3" } },
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
