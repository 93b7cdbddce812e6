import { describe, expect, it } from "vitest";
import { parseManifest } from "./index.js";
import { problemsOf } from "./test-problems.js";

const now = new Date(2026, 10, 24, 9, 30);

describe("YAML manifests", () => {
  it("parses scenes with defaults, vars, templating, takes, tags and media sections", () => {
    const m = parseManifest(
      `name: harbour
defaults:
  duration: 10
  prompt_optimizer: false
vars:
  style: cinematic, 35mm
scenes:
  - id: open
    prompt: "Harbour at dawn, {{style}}, {{weekday}} {{date}}"
    duration: 6
    tags: [establishing, wide]
    transition: dissolve:0.75
  - prompt: A gull lands on a post [Push in]
    takes: 2
assemble:
  transition: fade:0.5
  title: { text: "Harbour", duration: 2 }
  audio: music.mp3
thumbnails:
  poster_at: 2.5
  preview: webp
`,
      { file: "harbour.yaml", now },
    );
    expect(m.name).toBe("harbour");
    expect(m.scenes).toHaveLength(2);
    expect(m.scenes[0]).toMatchObject({
      id: "open",
      prompt: "Harbour at dawn, cinematic, 35mm, tuesday 2026-11-24",
      duration: "6",
      prompt_optimizer: false,
      takes: 1,
      tags: ["establishing", "wide"],
      transition: { type: "dissolve", durationS: 0.75 },
      source: { file: "harbour.yaml", line: 8 },
    });
    expect(m.scenes[1]).toMatchObject({ id: "a-gull-lands-on-a-post", duration: "10", takes: 2 });
    expect(m.assemble).toMatchObject({
      transition: { type: "fade", durationS: 0.5 },
      title: { text: "Harbour", durationS: 2, color: "#101820" },
      audio: { file: "music.mp3", volume: 1 },
      output: "film.mp4",
    });
    expect(m.thumbnails).toEqual({ posterAt: 2.5, sheetColumns: 4, preview: "webp" });
  });

  it("lists every problem at once with line, column and field", () => {
    const problems = problemsOf(`name: bad
scenes:
  - id: one
    prompt: fine
    duraton: 6
  - id: one
    prompt: also fine
    duration: 7
  - id: ../../etc/passwd
    prompt: "{{missing}} thing"
  - id: empty
    prompt: "   "
  - id: long
    prompt: "${"x".repeat(1990)} {{style}}"
vars:
  style: abcdefghij
`);
    expect(problems).toEqual([
      '5:5 scenes[0].duraton: unknown key; did you mean "duration"?',
      '8:15 scenes[1].duration: duration must be 6 or 10 (seconds), got "7"',
      '6:9 scenes[1].id: duplicate id "one" (first used at scenes.0)',
      "10:13 scenes[2].prompt: undefined variable {{missing}} (define it under vars:)",
      expect.stringMatching(
        /^9:9 scenes\[2\]\.id: id "\.\.\/\.\.\/etc\/passwd" is not a safe file name/,
      ),
      "12:13 scenes[3].prompt: prompt must not be empty",
      "14:13 scenes[4].prompt: prompt is 2001 characters; at most 2000 are allowed (after templating; limit 2000)",
    ]);
  });

  it("refuses YAML alias bombs, duplicate keys and syntax errors with positions", () => {
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 8; i++)
      bomb.push(
        `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
          .fill(`*${String.fromCharCode(97 + i)}`)
          .join(", ")}]`,
      );
    bomb.push("scenes: [{prompt: hi}]");
    expect(problemsOf(bomb.join("\n"))[0]).toMatch(/alias/i);
    expect(problemsOf("scenes:\n  - prompt: a\nscenes:\n  - prompt: b\n")[0]).toMatch(
      /^3:1 : .*unique/i,
    );
    expect(problemsOf("scenes: [\n")[0]).toMatch(/^\d+:\d+ /);
    expect(problemsOf("sceens:\n  - prompt: a\n")).toEqual([
      '1:1 sceens: unknown key; did you mean "scenes"?',
      "1:1 scenes: a manifest needs at least one scene",
    ]);
  });

  it("refuses files over the size limit before parsing", () => {
    expect(() =>
      parseManifest("#".repeat(1024 * 1024 + 1), {
        file: "huge.yaml",
        limits: { maxBytes: 1024 * 1024 },
      }),
    ).toThrow(/larger than 1024 KiB \(raise it with HAILUO_MAX_MANIFEST_BYTES\)/);
  });
});

describe("CSV and JSONL manifests", () => {
  it("reads a CSV with per-row variables and reports row and column", () => {
    const m = parseManifest(
      'id,prompt,duration,mood,tags\nmon,"A {{mood}} Monday, {{date}}",6,calm,daily;calm\ntue,A {{mood}} Tuesday,10,busy,\n',
      { file: "week.csv", now },
    );
    expect(m.name).toBe("week");
    expect(m.scenes.map((s) => [s.id, s.prompt, s.duration, s.tags])).toEqual([
      ["mon", "A calm Monday, 2026-11-24", "6", ["daily", "calm"]],
      ["tue", "A busy Tuesday", "10", []],
    ]);
    expect(problemsOf("id,prompt,duration\na,ok,6\nb,{{nope}},8\n", "list.csv")).toEqual([
      "3:2 scenes[1].prompt: undefined variable {{nope}} (define it under vars: or as a column)",
      '3:3 scenes[1].duration: duration must be 6 or 10 (seconds), got "8"',
    ]);
    expect(problemsOf("id,promt\na,b\n", "list.csv")).toEqual([
      '1:- : the header row needs a "prompt" column; did you mean "promt"?',
    ]);
    expect(problemsOf('id,prompt\na,"unclosed\n', "list.csv")[0]).toMatch(/not valid CSV/);
    // csv-parse is loaded on first use (its CommonJS build): its errors still carry their line.
    expect(problemsOf('id,prompt\na,ok\nb,"un"closed\n', "list.csv")[0]).toMatch(
      /^3:- : not valid CSV: Invalid Closing Quote/,
    );
  });

  it("reads JSONL, one scene per line", () => {
    const m = parseManifest('{"id":"a","prompt":"one"}\n\n{"prompt":"two","duration":10}\n', {
      file: "x.jsonl",
      now,
    });
    expect(m.scenes.map((s) => s.id)).toEqual(["a", "two"]);
    expect(problemsOf('{"prompt":"ok"}\n{"prompt": 5, "takes": 0}\nnot json\n', "x.jsonl")).toEqual(
      [
        expect.stringMatching(/^3:- : not valid JSON: /),
        '2:- scenes[1].takes: expected a whole number from 1 to 20, got "0"',
      ],
    );
  });
});

describe("big manifests", () => {
  it("accepts 10,000 scenes in YAML and CSV (ids derived from prompts that share their first words stay unique), and names the limit it refuses past", () => {
    const n = 10_000;
    const yaml = `name: big\nscenes:\n${Array.from({ length: n }, (_, i) => `  - prompt: "A slow aerial shot over the same coastline, variation ${i}"\n`).join("")}`;
    const m = parseManifest(yaml, { file: "big.yaml" });
    expect(m.scenes).toHaveLength(n);
    expect(new Set(m.scenes.map((s) => s.id)).size).toBe(n);
    const csv = `id,prompt,duration\n${Array.from({ length: n }, (_, i) => `c${i},"row ${i} of the list",${i % 2 ? 10 : 6}`).join("\n")}\n`;
    expect(parseManifest(csv, { file: "big.csv" }).scenes).toHaveLength(n);
    expect(() => parseManifest(csv, { file: "big.csv", limits: { maxItems: 9_999 } })).toThrow(
      /10000 generations \(scenes × takes\) is more than the 9999 one manifest may hold \(raise it with HAILUO_MAX_ITEMS\)/,
    );
  });
});
