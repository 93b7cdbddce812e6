/** What one scene of the film would change if it were assembled now. */
export interface FilmChange {
  scene: string;
  /**
   * `pick`: the film shows another take than the one picked now; `added`: the film leaves the
   * scene out (or shows a placeholder) and it has a clip now; `dropped`: the film shows a take and
   * the scene has no clip now; `newer`: the same take, its clip saved again after the film was made.
   */
  why: "pick" | "added" | "dropped" | "newer";
  /** The take the film shows (absent: left out or a placeholder). */
  filmTake?: number;
  /** The take an assemble would use now (absent: none has a clip). */
  pickTake?: number;
}

/** One scene as the film was made and as it would be made now. */
export interface FilmSceneFacts {
  scene: string;
  /** The film's chapter for it (absent: the film leaves it out). */
  used?: { take?: number; file?: string };
  /** The take an assemble would use now, with its clip's modification time. */
  now?: { take: number; file: string; mtimeMs?: number };
}

/**
 * The scenes whose take in the film differs from the take an assemble would use now, in film
 * order; empty when the film is up to date. Pure: the caller reads `<film>.json` (which records
 * each scene's take and clip), the picks and the clips' times. A clip saved after the film
 * (`filmMtimeMs`) is not the one in the film, even under the same name.
 */
export function filmChanges(scenes: FilmSceneFacts[], filmMtimeMs: number): FilmChange[] {
  const changes: FilmChange[] = [];
  for (const { scene, used, now } of scenes) {
    const filmTake = used?.file ? used.take : undefined;
    const shown = filmTake !== undefined ? { filmTake } : {};
    if (!now) {
      if (filmTake !== undefined) changes.push({ scene, why: "dropped", ...shown });
    } else if (filmTake === undefined) {
      changes.push({ scene, why: "added", pickTake: now.take });
    } else if (used!.file !== now.file) {
      changes.push({ scene, why: "pick", ...shown, pickTake: now.take });
    } else if (now.mtimeMs !== undefined && now.mtimeMs > filmMtimeMs) {
      changes.push({ scene, why: "newer", ...shown, pickTake: now.take });
    }
  }
  return changes;
}

/** One change in the words the page shows: "s2: film uses take 1; assemble for take 3". */
export function describeChange(c: FilmChange): string {
  switch (c.why) {
    case "pick":
      return `${c.scene}: film uses take ${c.filmTake}; assemble for take ${c.pickTake}`;
    case "added":
      return `${c.scene}: not in the film; assemble for take ${c.pickTake}`;
    case "dropped":
      return `${c.scene}: film uses take ${c.filmTake}, which has no clip now; assemble without it`;
    case "newer":
      return `${c.scene}: take ${c.pickTake} was saved again after the film; assemble to use it`;
  }
}
