import { readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { Cron } from "croner";
import { parseStoreUrl } from "@hailuo/store";
import {
  FieldChecker,
  ManifestError,
  isSafeId,
  manifestFromData,
  readYamlSource,
  readSceneImages,
  loadManifest,
  type Manifest,
  type ThumbnailSpec,
} from "@hailuo/manifest";

/** What to do about fire times that passed while no scheduler was running. */
export type MissedPolicy = "skip" | "catch-up";

/** A validated `jobs/<name>/job.yaml`. */
export interface JobDefinition {
  name: string;
  /** The job file, for messages. */
  file: string;
  cron: string;
  /** IANA time zone of the cron expression and of `{{date}}`. @default "UTC" */
  timeZone: string;
  /** A manifest file (absolute) or an inline manifest. */
  manifest: { file: string } | { inline: Manifest };
  vars: Record<string, string>;
  /** Folder that holds this job's runs, history and locks (absolute). */
  outputRoot: string;
  /**
   * `s3://bucket/prefix`: each run lives in the bucket at `<store>/<stamp>` (records in Redis)
   * instead of under `outputRoot`, which keeps the history. Runs on workers (`--redis`) only.
   */
  store?: string;
  /** Finished runs to keep; older ones are deleted. 0 keeps all. @default 14 */
  keep: number;
  budget: { perRunUsd?: number; perDayUsd?: number };
  missed: MissedPolicy;
  /** Overrides the manifest's `assemble:` presence. */
  assemble?: boolean;
  /** Overrides the manifest's `thumbnails:` section. */
  thumbnails?: ThumbnailSpec;
  concurrency: number;
  retries: number;
}

const JOB_KEYS = [
  "name",
  "schedule",
  "timezone",
  "manifest",
  "vars",
  "output",
  "store",
  "keep",
  "budget",
  "missed",
  "assemble",
  "thumbnails",
  "concurrency",
  "retries",
];

/** Whether a time zone name is one this runtime knows. */
function knownTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses a job definition (pure: the manifest it points at is only resolved, not read).
 * Every problem is reported with file, line and field.
 */
export function parseJobDefinition(text: string, file: string): JobDefinition {
  const { data, locate } = readYamlSource(text, file);
  const c = new FieldChecker(file, locate);
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new ManifestError(file, [
      { file, field: "", message: "a job file is a mapping with schedule: and manifest:" },
    ]);
  }
  const d = data as Record<string, unknown>;
  c.keys(d, [], JOB_KEYS);
  const dir = dirname(resolve(file));
  const name = c.string(d.name, ["name"]) ?? basename(dir);
  if (!isSafeId(name))
    c.add(["name"], `job name ${JSON.stringify(name)} must be a safe folder name`);

  let cron = "";
  let timeZone = c.string(d.timezone, ["timezone"]) ?? "UTC";
  const sched = d.schedule;
  if (typeof sched === "string") cron = sched;
  else if (sched && typeof sched === "object" && !Array.isArray(sched)) {
    const o = sched as Record<string, unknown>;
    c.keys(o, ["schedule"], ["cron", "timezone"]);
    cron = c.string(o.cron, ["schedule", "cron"]) ?? "";
    timeZone = c.string(o.timezone, ["schedule", "timezone"]) ?? timeZone;
  }
  if (!cron) c.add(["schedule"], 'a job needs schedule: "<cron expression>" (e.g. "0 7 * * *")');
  else {
    try {
      new Cron(cron, { paused: true });
    } catch (error) {
      c.add(
        typeof sched === "string" ? ["schedule"] : ["schedule", "cron"],
        `invalid cron expression ${JSON.stringify(cron)}: ${(error as Error).message}`,
      );
    }
  }
  if (!knownTimeZone(timeZone))
    c.add(
      typeof sched === "object" && sched && "timezone" in sched
        ? ["schedule", "timezone"]
        : ["timezone"],
      `unknown time zone ${JSON.stringify(timeZone)} (use an IANA name like Europe/Berlin)`,
    );

  let manifest: JobDefinition["manifest"] | undefined;
  if (typeof d.manifest === "string") manifest = { file: resolve(dir, d.manifest) };
  else if (d.manifest && typeof d.manifest === "object") {
    try {
      manifest = {
        inline: manifestFromData(d.manifest, (p, k) => locate(["manifest", ...p], k), {
          file,
          timeZone,
        }),
      };
    } catch (error) {
      if (error instanceof ManifestError)
        c.problems.push(
          ...error.problems.map((p) => ({
            ...p,
            field: p.field ? `manifest.${p.field}` : "manifest",
          })),
        );
      else throw error;
    }
  } else
    c.add(
      ["manifest"],
      "a job needs manifest: (a path relative to the job file, or an inline manifest)",
    );

  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(c.object(d.vars, ["vars"]) ?? {})) {
    const s = c.string(v, ["vars", k]);
    if (s !== undefined) vars[k] = s;
  }
  const budget = c.object(d.budget, ["budget"]) ?? {};
  c.keys(budget, ["budget"], ["per_run", "per_day"]);
  const missed = (c.string(d.missed, ["missed"]) ?? "skip") as MissedPolicy;
  if (missed !== "skip" && missed !== "catch-up")
    c.add(["missed"], `missed must be skip or catch-up, got ${JSON.stringify(d.missed)}`);
  const def: JobDefinition = {
    name,
    file,
    cron,
    timeZone,
    manifest: manifest ?? { file: "" },
    vars,
    outputRoot: resolve(dir, c.string(d.output, ["output"]) ?? join("..", "..", "runs", name)),
    ...storeOf(c, d.store),
    keep: c.number(d.keep, ["keep"], 14, { min: 0, max: 10_000, integer: true }),
    budget: {
      perRunUsd:
        budget.per_run === undefined
          ? undefined
          : c.number(budget.per_run, ["budget", "per_run"], 0, { min: 0 }),
      perDayUsd:
        budget.per_day === undefined
          ? undefined
          : c.number(budget.per_day, ["budget", "per_day"], 0, { min: 0 }),
    },
    missed,
    concurrency: c.number(d.concurrency, ["concurrency"], 2, { min: 1, max: 40, integer: true }),
    retries: c.number(d.retries, ["retries"], 3, { min: 0, max: 10, integer: true }),
  };
  if (d.assemble !== undefined) def.assemble = c.bool(d.assemble, ["assemble"], false);
  if (d.thumbnails !== undefined) def.thumbnails = c.thumbnails(d.thumbnails, ["thumbnails"]);
  if (c.problems.length) throw new ManifestError(file, c.problems);
  return def;
}

/** Reads one job file. */
export async function loadJobDefinition(file: string): Promise<JobDefinition> {
  const text = await readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
    throw new ManifestError(file, [
      { file, field: "", message: e.code === "ENOENT" ? "no such file" : e.message },
    ]);
  });
  return parseJobDefinition(text, file);
}

/** Every `<jobs-dir>/<name>/job.yaml`, sorted by name. */
export async function loadJobs(jobsDir: string): Promise<JobDefinition[]> {
  const entries = await readdir(jobsDir, { withFileTypes: true }).catch(() => {
    throw new ManifestError(jobsDir, [
      { file: jobsDir, field: "", message: "no such jobs folder" },
    ]);
  });
  const files: string[] = [];
  for (const e of entries) {
    const f = join(jobsDir, e.name, "job.yaml");
    if (
      e.isDirectory() &&
      (await stat(f).then(
        () => true,
        () => false,
      ))
    )
      files.push(f);
  }
  return Promise.all(files.sort().map(loadJobDefinition));
}

/** The job's manifest for one fire time: `{{date}}` and friends in the job's time zone, the job's thumbnail settings applied. */
export async function manifestForRun(job: JobDefinition, fireAt: Date): Promise<Manifest> {
  const manifest = await templatedManifest(job, fireAt);
  return job.thumbnails ? { ...manifest, thumbnails: job.thumbnails } : manifest;
}

async function templatedManifest(job: JobDefinition, fireAt: Date): Promise<Manifest> {
  if ("inline" in job.manifest) {
    // Re-read so this fire time's {{date}} is templated in, with the same source positions.
    const { data, locate } = readYamlSource(await readFile(job.file, "utf8"), job.file);
    const parsed = manifestFromData(
      (data as { manifest: unknown }).manifest,
      (p, k) => locate(["manifest", ...p], k),
      { file: job.file, now: fireAt, timeZone: job.timeZone, vars: job.vars },
    );
    // Images beside the job file are read and checked as a manifest file's are.
    return readSceneImages(parsed, dirname(job.file));
  }
  return loadManifest(job.manifest.file, { now: fireAt, timeZone: job.timeZone, vars: job.vars });
}

/** Next fire times of a job after `from`. */
export function nextFireTimes(
  job: Pick<JobDefinition, "cron" | "timeZone">,
  from: Date,
  count = 1,
): Date[] {
  return new Cron(job.cron, { timezone: job.timeZone, paused: true }).nextRuns(count, from);
}

/** `store:` checked as a bucket address (`s3://bucket/prefix`), without a trailing slash. */
function storeOf(c: FieldChecker, value: unknown): { store?: string } {
  const text = c.string(value, ["store"]);
  if (text === undefined) return {};
  try {
    parseStoreUrl(text);
  } catch (error) {
    c.add(["store"], (error as Error).message);
    return {};
  }
  return { store: text.replace(/\/+$/, "") };
}
