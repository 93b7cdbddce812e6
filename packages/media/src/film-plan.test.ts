import { describe, expect, it } from "vitest";
import { pieceRuns, planFilm, readsPending, type FilmPart, type FilmPlanInput } from "./index.js";

const clip = (id: string, durationS = 6): FilmPart => ({
  kind: "clip",
  file: `/clips/${id}.mp4`,
  id,
  durationS,
  ready: true,
});
const fade = { type: "fade", durationS: 0.5 };
const input = (parts: FilmPart[], transitions: FilmPlanInput["transitions"]): FilmPlanInput => ({
  parts,
  transitions,
  W: 1366,
  H: 768,
  F: 24,
  preset: "veryfast",
});
/** A plan as a table: kind, frames, where it starts, and what it reads. */
const table = (i: FilmPlanInput) =>
  planFilm(i).pieces.map((p) => [
    p.kind,
    p.frames,
    p.startFrame,
    p.reads.map((r) => `${r.part}:${r.fromFrame}-${r.toFrame}`).join(" "),
  ]);

describe("planFilm", () => {
  it.each([
    {
      what: "a fade, then a cut",
      parts: [clip("a"), clip("b", 10), clip("c")],
      transitions: [fade, { type: "cut", durationS: 0 }],
      pieces: [
        ["body", 132, 0, "0:0-132"],
        ["window", 12, 132, "0:132-144 1:0-12"],
        ["body", 228, 144, "1:12-240"],
        ["body", 144, 372, "2:0-144"],
      ],
      totalFrames: 516, // (6 + 10 + 6 − 0.5) × 24
      partStartsS: [0, 5.5, 15.5],
    },
    {
      what: "a title card and fades everywhere",
      parts: [
        { kind: "card", text: "Title", color: "#101820", durationS: 2 } as FilmPart,
        clip("a"),
        clip("b"),
      ],
      transitions: [fade, { type: "dissolve", durationS: 1 }],
      pieces: [
        ["body", 36, 0, "0:0-36"],
        ["window", 12, 36, "0:36-48 1:0-12"],
        ["body", 108, 48, "1:12-120"],
        ["window", 24, 156, "1:120-144 2:0-24"],
        ["body", 120, 180, "2:24-144"],
      ],
      totalFrames: 300, // (2 + 6 + 6 − 0.5 − 1) × 24
      partStartsS: [0, 1.5, 6.5],
    },
    {
      what: "plain cuts: one body per clip",
      parts: [clip("a"), clip("b")],
      transitions: [undefined],
      pieces: [
        ["body", 144, 0, "0:0-144"],
        ["body", 144, 144, "1:0-144"],
      ],
      totalFrames: 288,
      partStartsS: [0, 6],
    },
  ])("$what", ({ parts, transitions, pieces, totalFrames, partStartsS }) => {
    const i = input(parts, transitions);
    expect(table(i)).toEqual(pieces);
    const plan = planFilm(i);
    expect(plan.totalFrames).toBe(totalFrames);
    expect(plan.pieces.reduce((s, p) => s + p.frames, 0)).toBe(totalFrames);
    expect(plan.durationS).toBe(totalFrames / 24);
    expect(plan.partStartsS).toEqual(partStartsS);
    expect(plan.pieces.find((p) => p.kind === "window")?.transition).toBe(
      transitions.find((t) => t && t.type !== "cut")?.type,
    );
  });

  it("keys name the pieces' inputs: a new clip in one slot changes its body and its two windows only", () => {
    const base = [clip("a"), clip("b"), clip("c"), clip("d")];
    const keys = (parts: FilmPart[], over: Partial<FilmPlanInput> = {}) =>
      planFilm({ ...input(parts, [fade, fade, fade]), ...over }).pieces.map((p) => p.key);
    const before = keys(base);
    expect(new Set(before).size).toBe(before.length);
    expect(keys(base)).toEqual(before);
    const after = keys([clip("a"), clip("b2"), clip("c"), clip("d")]);
    // body a | a→b | body b | b→c | body c | c→d | body d
    expect(after.map((k, i) => k === before[i])).toEqual([
      true,
      false,
      false,
      false,
      true,
      true,
      true,
    ]);
    // The same clip read the same way is the same piece wherever it stands in the film.
    expect(keys([clip("x"), clip("b"), clip("y"), clip("z")])[2]).toBe(before[2]);
    // A clip in another format goes through another filter: other frames, another key.
    expect(
      keys([clip("a"), { ...clip("b"), ready: false } as FilmPart, clip("c"), clip("d")])[2],
    ).not.toBe(before[2]);
    // Another encode or frame: every piece is another.
    for (const over of [{ preset: "ultrafast" }, { W: 1280 }, { F: 25 }]) {
      const other = keys(base, over);
      expect(other.filter((k) => before.includes(k))).toEqual([]);
    }
    // A longer transition changes the windows and the bodies beside them.
    const longer = planFilm(input(base, [fade, { type: "fade", durationS: 1 }, fade])).pieces;
    expect(longer.map((p, i) => p.key === before[i])).toEqual([
      true,
      true,
      false,
      false,
      false,
      true,
      true,
    ]);
  });

  it("refuses a transition longer than a part, and windows that overlap", () => {
    expect(() =>
      planFilm(input([clip("a", 2), clip("b")], [{ type: "fade", durationS: 3 }])),
    ).toThrow(/longer than a part it joins/);
    expect(() =>
      planFilm(
        input(
          [clip("a"), clip("b", 2), clip("c")],
          [
            { type: "fade", durationS: 1.2 },
            { type: "fade", durationS: 1.2 },
          ],
        ),
      ),
    ).toThrow(/part 2 overlap/);
  });

  it("marks the pieces that read a clip not there yet", () => {
    const plan = planFilm(
      input(
        [clip("a"), { kind: "pending", durationS: 6 }, clip("c"), clip("d")],
        [fade, fade, fade],
      ),
    );
    expect(plan.pieces.map((p) => readsPending(plan, p))).toEqual([
      false,
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
  });
});

describe("pieceRuns", () => {
  const plan = planFilm(
    input(
      Array.from({ length: 21 }, (_, i) => clip(`c${i}`)),
      Array.from({ length: 20 }, () => fade),
    ),
  );
  const all = new Set(plan.pieces.map((p) => p.key));
  const partsOf = (run: { reads: { part: number }[] }[]) =>
    new Set(run.flatMap((p) => p.reads.map((r) => r.part))).size;

  it("makes consecutive pieces in one run, and never joins pieces that are not consecutive", () => {
    const want = (...i: number[]) => new Set(i.map((k) => plan.pieces[k]!.key));
    const idx = (runs: ReturnType<typeof pieceRuns>) =>
      runs.map((r) => r.map((p) => plan.pieces.indexOf(p)));
    // One new clip in slot 3: window in, body, window out, one ffmpeg.
    expect(idx(pieceRuns(plan, want(5, 6, 7)))).toEqual([[5, 6, 7]]);
    expect(idx(pieceRuns(plan, want(5, 6, 7, 20, 21)))).toEqual([
      [5, 6, 7],
      [20, 21],
    ]);
    expect(pieceRuns(plan, new Set())).toEqual([]);
  });

  it("cuts a whole film into an even number of runs of near-equal frames, none touching more than 9 parts", () => {
    const runs = pieceRuns(plan, all, { together: 2 });
    expect(runs.flat()).toEqual(plan.pieces);
    expect(runs.length % 2).toBe(0);
    expect(Math.max(...runs.map(partsOf))).toBeLessThanOrEqual(9);
    const frames = runs.map((r) => r.reduce((s, p) => s + p.frames, 0));
    expect(Math.max(...frames) - Math.min(...frames)).toBeLessThanOrEqual(144);
    // One encoder at a time: the fewest runs that keep to 9 parts.
    const one = pieceRuns(plan, all, { together: 1 });
    expect(one.length).toBe(3);
    expect(Math.max(...one.map(partsOf))).toBeLessThanOrEqual(9);
  });
});
