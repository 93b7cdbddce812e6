import { describe, expect, it } from "vitest";
import { describeChange, filmChanges, type FilmSceneFacts } from "./film-status.js";

const FILM_MS = 1000;
const used = (take: number) => ({ take, file: `clips/s_t${take}.mp4` });
const now = (take: number, mtimeMs = 500) => ({ take, file: `clips/s_t${take}.mp4`, mtimeMs });

describe("filmChanges", () => {
  const cases: [string, Omit<FilmSceneFacts, "scene">, string | undefined][] = [
    ["same take, clip older than the film", { used: used(1), now: now(1) }, undefined],
    [
      "same take, time unknown",
      { used: used(1), now: { take: 1, file: "clips/s_t1.mp4" } },
      undefined,
    ],
    [
      "another take picked",
      { used: used(1), now: now(3) },
      "s: film uses take 1; assemble for take 3",
    ],
    ["left out, now has a clip", { now: now(2) }, "s: not in the film; assemble for take 2"],
    [
      "a placeholder, now has a clip",
      { used: { take: undefined }, now: now(1) },
      "s: not in the film; assemble for take 1",
    ],
    [
      "in the film, no clip now",
      { used: used(2) },
      "s: film uses take 2, which has no clip now; assemble without it",
    ],
    ["left out and still no clip", {}, undefined],
    [
      "same take saved again after the film",
      { used: used(1), now: now(1, 2000) },
      "s: take 1 was saved again after the film; assemble to use it",
    ],
  ];
  it.each(cases)("%s", (_name, facts, said) => {
    const changes = filmChanges([{ scene: "s", ...facts }], FILM_MS);
    expect(changes.map(describeChange)).toEqual(said ? [said] : []);
  });

  it("keeps the film's order and names each scene once", () => {
    const changes = filmChanges(
      [
        { scene: "a", used: used(1), now: now(2) },
        { scene: "b", used: used(1), now: now(1) },
        { scene: "c", now: now(1) },
      ],
      FILM_MS,
    );
    expect(changes).toEqual([
      { scene: "a", why: "pick", filmTake: 1, pickTake: 2 },
      { scene: "c", why: "added", pickTake: 1 },
    ]);
  });
});
