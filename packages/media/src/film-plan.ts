import { createHash } from "node:crypto";
import { AssembleError } from "./assemble-error.js";
import { FONT_OPTION } from "./fonts.js";
import { segmentFrames } from "./segments.js";

/**
 * Bumped whenever what a piece holds for the same inputs changes (its filter graph, its encode):
 * every key changes with it, so no piece made the old way is joined to one made the new way.
 */
export const PIECE_FORMAT = 1;
/** x264's constant rate factor of every piece (and of the film made in one go). */
export const PIECE_CRF = 20;

/**
 * One part of a film, as the plan sees it: a clip known by its content (`id`, e.g. its sha256)
 * and whether it is already in the film's format; a card; or a clip not there yet (`pending`:
 * the pieces that read it cannot be made, the others can).
 */
export type FilmPart =
  | { kind: "clip"; file: string; id: string; durationS: number; ready: boolean }
  | { kind: "card"; text: string; color: string; durationS: number }
  | { kind: "pending"; durationS: number };

/** What `planFilm` plans from: the parts in film order, the transition after each, the frame and the encode. */
export interface FilmPlanInput {
  parts: FilmPart[];
  /** The transition after part k (undefined, `cut` or 0 s: none). */
  transitions: ({ type: string; durationS: number } | undefined)[];
  W: number;
  H: number;
  F: number;
  /** libx264 preset. */
  preset: string;
}

/** Frames `[fromFrame, toFrame)` of part `part` (counted in the film's rate), read by one piece. */
export interface PieceRead {
  part: number;
  fromFrame: number;
  toFrame: number;
}

/**
 * One piece of the film, encoded on its own and kept under `key`: a part's body (what no
 * transition overlaps) or a transition window (the outgoing part's last frames blended into the
 * incoming part's first).
 */
export interface FilmPiece {
  kind: "body" | "window";
  /** Hash of everything the piece's frames depend on: its sources' contents, ranges, transition, frame and encode. */
  key: string;
  frames: number;
  /** Where the piece starts in the film, in frames. */
  startFrame: number;
  /** A body reads one part; a window reads the outgoing part's tail, then the incoming part's head. */
  reads: PieceRead[];
  /** A window's transition (xfade's name, or `fade`). */
  transition?: string;
}

/** The film as pieces: in order, each with its key, adding up to the film's length exactly. */
export interface FilmPlan {
  input: FilmPlanInput;
  pieces: FilmPiece[];
  totalFrames: number;
  durationS: number;
  /** Where each part starts in the film (the first frame of the transition into it), in seconds. */
  partStartsS: number[];
}

/** What identifies a part's frames: a clip by content, a card by everything drawn. */
function identity(p: FilmPart): unknown[] {
  if (p.kind === "clip") return ["clip", p.id, p.ready];
  if (p.kind === "card") return ["card", p.text, p.color, p.durationS, FONT_OPTION];
  return ["pending"];
}

function pieceKey(input: FilmPlanInput, what: unknown[]): string {
  const { W, H, F, preset } = input;
  return createHash("sha256")
    .update(JSON.stringify([PIECE_FORMAT, W, H, F, preset, PIECE_CRF, ...what]))
    .digest("hex")
    .slice(0, 32);
}

/**
 * Cuts a film into pieces (pure): part k's body is its frames after the window into it and
 * before the window out of it; each transition is a window of its own. Whole frames throughout
 * (`segmentFrames`), so the pieces add up to what the film made in one go lasts. A new clip in
 * one slot changes the keys of its body and its two windows only.
 */
export function planFilm(input: FilmPlanInput): FilmPlan {
  const { parts, F } = input;
  const transitions = parts
    .slice(0, -1)
    .map((_, k) => input.transitions[k])
    .map((t) => (t && t.type !== "cut" && t.durationS > 0 ? t : undefined));
  const { bodies, transitions: t } = segmentFrames(
    parts.map((p) => p.durationS),
    transitions.map((x) => x?.durationS ?? 0),
    F,
  );
  const total = (k: number) => Math.round(parts[k]!.durationS * F);
  for (const [k, n] of t.entries())
    if (n > 0 && (n >= total(k) || n >= total(k + 1)))
      throw new AssembleError(
        `transition ${transitions[k]!.type}:${transitions[k]!.durationS} after part ${k + 1} is longer than a part it joins`,
      );
  const overlapped = bodies.findIndex((b) => b < 0);
  if (overlapped >= 0)
    throw new AssembleError(
      `the transitions into and out of part ${overlapped + 1} overlap: together they are longer than it`,
    );
  const pieces: FilmPiece[] = [];
  const partStartsS: number[] = [];
  let at = 0;
  const add = (p: Omit<FilmPiece, "startFrame">) => {
    pieces.push({ ...p, startFrame: at });
    at += p.frames;
  };
  for (const [k, part] of parts.entries()) {
    // Part k starts where the window into it starts: that window was the last piece added.
    partStartsS.push((at - (t[k - 1] ?? 0)) / F);
    const from = t[k - 1] ?? 0;
    if (bodies[k]! > 0) {
      const read = { part: k, fromFrame: from, toFrame: from + bodies[k]! };
      add({
        kind: "body",
        frames: bodies[k]!,
        reads: [read],
        key: pieceKey(input, ["body", identity(part), read.fromFrame, read.toFrame]),
      });
    }
    const n = t[k] ?? 0;
    if (n > 0) {
      const tail = { part: k, fromFrame: total(k) - n, toFrame: total(k) };
      const head = { part: k + 1, fromFrame: 0, toFrame: n };
      const type = transitions[k]!.type;
      add({
        kind: "window",
        frames: n,
        reads: [tail, head],
        transition: type,
        key: pieceKey(input, [
          "window",
          type,
          n,
          identity(part),
          tail.fromFrame,
          tail.toFrame,
          identity(parts[k + 1]!),
          head.fromFrame,
          head.toFrame,
        ]),
      });
    }
  }
  return { input, pieces, totalFrames: at, durationS: at / F, partStartsS };
}

/** Whether a piece reads a part that is not there yet. */
export function readsPending(plan: FilmPlan, piece: FilmPiece): boolean {
  return piece.reads.some((r) => plan.input.parts[r.part]!.kind === "pending");
}

/**
 * Groups the pieces to make (`wanted`, any subset of the plan's) into ffmpeg runs (pure): each run
 * is consecutive pieces of the film, read by one ffmpeg that decodes each part it touches once and
 * writes each piece to a file of its own. A run touches at most `maxParts` parts (each input costs
 * tens of MiB of decoder and filter buffers); a long stretch is cut into a multiple of `together`
 * runs of near-equal frames, so no encoder sits idle while the last, shorter run is made alone.
 */
export function pieceRuns(
  plan: FilmPlan,
  wanted: ReadonlySet<string>,
  { maxParts = 8, together = 1 }: { maxParts?: number; together?: number } = {},
): FilmPiece[][] {
  const stretches: FilmPiece[][] = [];
  let current: FilmPiece[] = [];
  for (const p of plan.pieces) {
    if (wanted.has(p.key)) current.push(p);
    else if (current.length) {
      stretches.push(current);
      current = [];
    }
  }
  if (current.length) stretches.push(current);
  const partsOf = (run: FilmPiece[]) => new Set(run.flatMap((p) => p.reads.map((r) => r.part)));
  return stretches.flatMap((stretch) => {
    const parts = partsOf(stretch).size;
    let count = Math.ceil(parts / maxParts);
    if (count > 1) count = Math.ceil(count / together) * together;
    for (; ; count++) {
      const runs = splitByFrames(stretch, Math.min(count, stretch.length));
      if (count >= stretch.length || runs.every((r) => partsOf(r).size <= maxParts + 1))
        return runs;
    }
  });
}

/** `pieces` cut into `count` consecutive runs of near-equal frames (each at least one piece). */
function splitByFrames(pieces: FilmPiece[], count: number): FilmPiece[][] {
  const total = pieces.reduce((s, p) => s + p.frames, 0);
  const runs: FilmPiece[][] = [];
  let run: FilmPiece[] = [];
  let done = 0;
  for (const [i, p] of pieces.entries()) {
    run.push(p);
    done += p.frames;
    const left = pieces.length - i - 1;
    const runsLeft = count - runs.length - 1;
    // Cut when this run reached its share, or when every remaining piece must start a run of its own.
    if (runsLeft > 0 && (done >= (total * (runs.length + 1)) / count || left === runsLeft)) {
      runs.push(run);
      run = [];
    }
  }
  if (run.length) runs.push(run);
  return runs;
}
