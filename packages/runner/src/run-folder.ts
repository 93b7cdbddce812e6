import { stat } from "node:fs/promises";
import { join } from "node:path";
import { ManifestError, checkRecordedManifest, type Manifest } from "@hailuo/manifest";
import { HailuoError } from "@hailuo/shared";
import { createLocalStore, type RunStore } from "@hailuo/store";

/** A run: its folder, or its store (a folder or a bucket). */
export type RunAt = string | RunStore;

/** The store of a run given by folder or by store. */
export function storeOf(at: RunAt): RunStore {
  return typeof at === "string" ? createLocalStore(at) : at;
}

/** How a run is named in messages: its folder, or its store's address. */
export function runName(at: RunAt): string {
  return typeof at === "string" ? at : at.url;
}

/** Where a run's requests go. Its requests exist only there, so a resume must go there too. */
export type Backend =
  { kind: "fal" } | { kind: "emulator"; url: string } | { kind: "builtin-emulator" };

/** What run.json holds. */
export interface RunFile {
  version: 2;
  manifest: Manifest;
  backend?: Backend;
  /**
   * The account's price a distributed run was enqueued at (`--price`, or fal's pricing API):
   * workers plan, reserve and journal with it. @default the built-in table
   */
  usdPerSecond?: number;
  /** The same for other endpoints than the seed: unit prices by endpoint id, in each record's unit. */
  unitPricesUsd?: Record<string, number>;
  /** A distributed run's budget: its workers refuse to submit when its reservations cannot be found. */
  budgetUsd?: number;
  /** Retries per generation a distributed run was enqueued with (`--retries`, job.yaml's `retries`): every worker uses them. */
  retries?: number;
}

/** The run went to another backend than this process would use. */
export class WrongBackendError extends HailuoError {
  constructor(message: string) {
    super("wrong_backend", message, { retryable: false });
  }
}

/** A backend in words, for messages (never a key). */
export function describeBackend(b: Backend): string {
  return b.kind === "fal"
    ? "fal.ai (billed)"
    : b.kind === "emulator"
      ? `the emulator at ${b.url}`
      : "the built-in emulator";
}

function sameBackend(a: Backend, b: Backend): boolean {
  return (
    a.kind === b.kind &&
    (a.kind !== "emulator" ||
      a.url.replace(/\/+$/, "") === (b as { url: string }).url.replace(/\/+$/, ""))
  );
}

/**
 * Refuses to carry a run on against another backend than the one its requests went to: their ids
 * mean nothing there, and a resubmit would pay again. `override` is the user's explicit say-so.
 */
export function checkBackend(
  runDir: string,
  recorded: Backend | undefined,
  current: Backend | undefined,
  override = false,
): void {
  if (!recorded || !current || override || sameBackend(recorded, current)) return;
  const how =
    recorded.kind === "fal"
      ? "set FAL_KEY and unset FAL_EMULATOR_URL"
      : recorded.kind === "emulator"
        ? `set FAL_EMULATOR_URL=${recorded.url}`
        : "unset FAL_KEY and FAL_EMULATOR_URL";
  throw new WrongBackendError(
    `${runDir} was run against ${describeBackend(recorded)}, but this command would use ${describeBackend(current)}; its requests live only there. To continue it, ${how} (or pass --backend-override to use ${describeBackend(current)} anyway)`,
  );
}

/**
 * Records the manifest and backend a run folder runs (run.json), so resume and workers need
 * nothing else. `previous`, the text read from it before, spares rewriting (and syncing) a file
 * that would not change: a resume of 10,000 scenes would write 3 MB for nothing.
 */
export async function writeRunFile(
  at: RunAt,
  manifest: Manifest,
  backend?: Backend,
  previous?: string,
  spec: Pick<RunFile, "usdPerSecond" | "unitPricesUsd" | "budgetUsd" | "retries"> = {},
): Promise<void> {
  // Warnings were told when the manifest was read; run.json records what runs.
  const { warnings: _told, ...recorded } = manifest;
  // Only the settings given: a local run's run.json stays as it always was.
  const given = Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined));
  const file: RunFile = {
    version: 2,
    manifest: recorded,
    ...(backend ? { backend } : {}),
    ...given,
  };
  const text = `${JSON.stringify(file, null, 2)}\n`;
  if (text !== previous) await storeOf(at).writeDocument("run.json", text);
}

/**
 * Reads run.json, with its text; `undefined` when the folder has none yet. It is input like any
 * manifest (a file anyone can edit): checked with the manifest's rules before anything runs from
 * it, so an escaping scene id is refused before a submit, not after fal billed the clip.
 */
export async function readRunFileText(
  at: RunAt,
): Promise<{ file: RunFile; text: string } | undefined> {
  const path = `${runName(at)}/run.json`;
  const text = await storeOf(at)
    .readDocument("run.json")
    .catch((error: HailuoError) => {
      // An unreadable local file is no run (as before); a store that cannot answer is an error.
      if (typeof at !== "string" && at.kind !== "local") throw error;
      return undefined;
    });
  if (text === undefined) return undefined;
  let file: RunFile;
  try {
    file = JSON.parse(text) as RunFile;
  } catch (error) {
    throw new ManifestError(path, [
      { file: path, field: "", message: `not valid JSON: ${(error as Error).message}` },
    ]);
  }
  checkRecordedManifest(file?.manifest, path, { text, root: ["manifest"] });
  if (
    file.retries !== undefined &&
    !(Number.isInteger(file.retries) && file.retries >= 0 && file.retries <= 20)
  ) {
    throw new ManifestError(path, [
      {
        file: path,
        field: "retries",
        message: `expected a whole number of retries from 0 to 20, got ${JSON.stringify(file.retries)}`,
      },
    ]);
  }
  const price = file.usdPerSecond;
  if (price !== undefined && !(typeof price === "number" && price > 0 && price < 10)) {
    throw new ManifestError(path, [
      {
        file: path,
        field: "usdPerSecond",
        message: `expected the price per second in USD, got ${JSON.stringify(price)}`,
      },
    ]);
  }
  const unit = file.unitPricesUsd;
  const badUnit =
    unit !== undefined &&
    (typeof unit !== "object" ||
      unit === null ||
      Object.values(unit).some((v) => !(typeof v === "number" && v > 0 && v < 100)));
  if (badUnit) {
    throw new ManifestError(path, [
      {
        file: path,
        field: "unitPricesUsd",
        message: `expected unit prices in USD by endpoint id, got ${JSON.stringify(unit)}`,
      },
    ]);
  }
  return { file, text };
}

/** Reads run.json; `undefined` when the run has none yet. */
export async function readRunFile(at: RunAt): Promise<RunFile | undefined> {
  return (await readRunFileText(at))?.file;
}

/** Reads the manifest a run was started with (written as run.json). */
export async function readRunManifest(at: RunAt): Promise<Manifest> {
  const file = await readRunFile(at);
  if (!file) throw notARun(runName(at));
  return file.manifest;
}

/** Throws `not_a_run` unless the run has a run.json (a folder's checked without reading it). */
export async function mustBeRunFolder(at: RunAt): Promise<void> {
  const found =
    typeof at === "string" || at.kind === "local"
      ? (await stat(join(storeOf(at).dir, "run.json")).catch(() => undefined))?.isFile()
      : (await at.readDocument("run.json")) !== undefined;
  if (!found) throw notARun(runName(at));
}

/** The error for a run with no run.json. */
export function notARun(name: string): HailuoError {
  return /^s3:\/\//.test(name)
    ? new HailuoError("not_a_run", `${name} holds no run (no run.json in its Redis)`)
    : new HailuoError("not_a_run", `${name} is not a run folder (no run.json)`);
}
