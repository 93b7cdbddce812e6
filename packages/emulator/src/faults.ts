/** Routes of the queue API where faults can be injected. */
export type FaultRoute = "submit" | "status" | "stream" | "result";
/** An HTTP error to answer with, or `drop`: do the work, then cut the connection without an answer. */
export type FaultKind = 429 | 500 | 502 | 503 | 504 | "drop";

/** One fault: fire on a share of calls (`rate`) and/or on the first `count` calls of a route. */
export interface FaultRule {
  route: FaultRoute;
  kind: FaultKind;
  /** Probability per call in [0, 1], drawn from the seeded generator. */
  rate?: number;
  /** Fire on the first N calls of the route. */
  count?: number;
  /** Retry-After (seconds) sent with 429/503. */
  retryAfterS?: number;
}

/**
 * A clip download that goes wrong (GET of a whole file): `short` sends the first `bytes` without a
 * Content-Length and ends the body cleanly, as a CDN cut mid-file can; `stall` announces the whole
 * file, sends `bytes`, then nothing more while holding the connection open.
 */
export interface FileFault {
  kind: "short" | "stall";
  /** Bytes sent before the cut or the stall. @default a third of the file */
  bytes?: number;
  /** Probability per download in [0, 1], drawn from the seeded generator. */
  rate?: number;
  /** Fire on the first N downloads. */
  count?: number;
}

/** What can go wrong, per run. */
export interface FaultConfig {
  /** Results leave out `video.file_size` (fal's File may lack it), so a short body cannot be told by size. */
  omitFileSize?: boolean;
  /** Faults of clip downloads. */
  files?: FileFault[];
  rules?: FaultRule[];
  /** Share of generations that end COMPLETED with an error. */
  generationErrorRate?: number;
  /** The first N generations end COMPLETED with an error. */
  generationErrorCount?: number;
  /** Prompts containing any of these words (case-insensitive) end COMPLETED with an error, every time. */
  generationErrorWords?: string[];
  /** Prompts containing any of these words (case-insensitive) end in a content-policy 422. */
  policyWords?: string[];
}

function includesWord(text: string, words: string[] | undefined): boolean {
  const lower = text.toLowerCase();
  return (words ?? []).some((w) => w && lower.includes(w.toLowerCase()));
}

/** mulberry32: a tiny seedable PRNG so fault runs can be replayed exactly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Decides, call by call, which fault (if any) fires. */
export class FaultPlan {
  private readonly calls = new Map<FaultRoute, number>();
  private generations = 0;
  private downloads = 0;
  constructor(
    private config: FaultConfig,
    private readonly random: () => number,
  ) {}

  /** Replaces the fault configuration (counters start again). */
  set(config: FaultConfig): void {
    this.config = config;
    this.calls.clear();
    this.generations = 0;
    this.downloads = 0;
  }

  /** The fault that fires for this download of a whole clip, if any. */
  nextFile(): FileFault | undefined {
    const n = ++this.downloads;
    return (this.config.files ?? []).find(
      (f) =>
        (f.count !== undefined && n <= f.count) || (f.rate !== undefined && this.random() < f.rate),
    );
  }

  /** Whether results leave out the clip's size. */
  get omitFileSize(): boolean {
    return Boolean(this.config.omitFileSize);
  }

  /** The rule that fires for this call of `route`, if any. */
  next(route: FaultRoute): FaultRule | undefined {
    const n = (this.calls.get(route) ?? 0) + 1;
    this.calls.set(route, n);
    for (const rule of this.config.rules ?? []) {
      if (rule.route !== route) continue;
      if (rule.count !== undefined && n <= rule.count) return rule;
      if (rule.rate !== undefined && this.random() < rule.rate) return rule;
    }
    return undefined;
  }

  /** Whether the generation that just finished should end with an error. */
  generationFails(prompt = ""): boolean {
    this.generations++;
    if (includesWord(prompt, this.config.generationErrorWords)) return true;
    const { generationErrorCount = 0, generationErrorRate = 0 } = this.config;
    return (
      this.generations <= generationErrorCount ||
      (generationErrorRate > 0 && this.random() < generationErrorRate)
    );
  }

  /** Whether a prompt trips the configured content policy. */
  violatesPolicy(prompt: string): boolean {
    return includesWord(prompt, this.config.policyWords);
  }
}

/**
 * Parses a CLI fault flag `route:kind:rate` or `route:kind:#count`, e.g. `submit:503:0.1`,
 * `submit:drop:#1`, `result:429:0.2`.
 */
export function parseFaultFlag(flag: string): FaultRule {
  const [route, kind, amount] = flag.split(":");
  const routes: FaultRoute[] = ["submit", "status", "stream", "result"];
  if (!routes.includes(route as FaultRoute))
    throw new Error(`fault "${flag}": route must be one of ${routes.join(", ")}`);
  const k = kind === "drop" ? "drop" : Number(kind);
  if (k !== "drop" && ![429, 500, 502, 503, 504].includes(k))
    throw new Error(`fault "${flag}": kind must be 429, 500, 502, 503, 504 or drop`);
  if (!amount) throw new Error(`fault "${flag}": give a rate (0.1) or a count (#2)`);
  const rule: FaultRule = { route: route as FaultRoute, kind: k as FaultKind };
  if (amount.startsWith("#")) rule.count = Number(amount.slice(1));
  else rule.rate = Number(amount);
  if (!Number.isFinite(rule.count ?? rule.rate) || (rule.rate ?? 0) < 0 || (rule.rate ?? 0) > 1)
    throw new Error(`fault "${flag}": bad amount "${amount}"`);
  return rule;
}
