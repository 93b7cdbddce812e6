import { randomUUID } from "node:crypto";
import { stat } from "node:fs/promises";
import type { FaultPlan } from "./faults.js";
import { priceOf } from "@hailuo/endpoints";
import { ImageInputError } from "./image-source.js";
import { endpointStats, type EmulatorStats } from "./stats.js";
import { inputHash, validateInput, type EmulatedInput, type InputProblem } from "./wire.js";

/** Time as the store sees it; tests may inject their own. */
export interface EmulatorClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real time. */
export const realClock: EmulatorClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** How the emulator plays the parts where fal's behaviour matters for money. */
export interface Behaviour {
  /**
   * `fal`: a failed generation ends COMPLETED with no `error` and its result fetch answers
   * 500 {"detail":"Internal Server Error"}; bad input is queued and its result answers 422
   * (reference fal-protocol.md §14, from fal's tests and TanStack/ai#396). `status-error`: the
   * status carries `error` and input is refused with 422 at submit (the emulator's old shape).
   */
  failureShape: "fal" | "status-error";
  /** `signal`: a running request that is cancelled keeps running and may complete (and bill), as fal's docs say; `immediate`: it ends at once. */
  cancelRunning: "signal" | "immediate";
}

/** A queued request. */
export interface EmulatedRequest {
  id: string;
  /** The endpoint id it was submitted to. */
  endpoint: string;
  raw: unknown;
  input?: EmulatedInput;
  /** The body as the endpoint's app reads it (its fields, defaults filled): what is hashed. */
  body?: Record<string, unknown>;
  invalid?: InputProblem[];
  state: "IN_QUEUE" | "IN_PROGRESS" | "COMPLETED";
  logs: { message: string; level: string; source: "USER"; timestamp: string }[];
  webhookUrl?: string;
  sentAt: number;
  eligibleAt: number;
  startedAt?: number;
  completedAt?: number;
  cancelRequested?: boolean;
  /** The answer of the result fetch; a video answer names its file id (the URL is built per client). */
  outcome?: {
    status: number;
    body: unknown;
    fileId?: string;
    statusError?: { error: string; errorType: string };
  };
  listeners: Set<() => void>;
}

/** Options of the store. */
export interface StoreOptions {
  slots: number;
  queueLatencyMs: number;
  progressLatencyMs: number;
  behaviour: Behaviour;
  faults: FaultPlan;
  stats: EmulatorStats;
  /** The account's unit price of an endpoint (per second or per video, as its record bills). */
  unitPriceUsd: (endpointId: string) => number;
  render: (input: EmulatedInput, endpointId: string) => Promise<string>;
  onComplete: (r: EmulatedRequest) => void;
  log: (line: string) => void;
  clock?: EmulatorClock;
}

/** Every request the emulator knows, its queue and its slots: fal's queue as a small state machine. */
export class RequestStore {
  readonly requests = new Map<string, EmulatedRequest>();
  readonly files = new Map<string, string>();
  private readonly queue: EmulatedRequest[] = [];
  private readonly timers = new Set<unknown>();
  private inProgress = 0;
  private closed = false;
  private readonly clock: EmulatorClock;

  constructor(private readonly o: StoreOptions) {
    this.clock = o.clock ?? realClock;
  }

  /** Queues a request to an endpoint (valid or not: fal validates inside the runner). */
  add(
    raw: unknown,
    webhookUrl: string | undefined,
    route: "submit" | "sync",
    endpoint: string,
  ): EmulatedRequest {
    const { input, problems, body } = validateInput(raw, endpoint);
    const now = this.clock.now();
    const r: EmulatedRequest = {
      id: randomUUID(),
      endpoint,
      raw,
      state: "IN_QUEUE",
      logs: [],
      webhookUrl,
      sentAt: now,
      eligibleAt: now + this.o.queueLatencyMs,
      listeners: new Set(),
    };
    if (input) {
      r.input = input;
      r.body = body;
    } else r.invalid = problems;
    this.requests.set(r.id, r);
    const s = this.o.stats;
    const e = endpointStats(s, endpoint);
    if (route === "submit") {
      s.submits.total++;
      e.submits++;
      const h = inputHash(body ?? raw);
      s.submits.byInput[h] = (s.submits.byInput[h] ?? 0) + 1;
    } else {
      s.syncRuns++;
      e.syncRuns++;
    }
    this.queue.push(r);
    this.o.log(
      `${route} ${r.id}${input ? ` (${input.duration}s) "${input.prompt.slice(0, 50)}"` : " (invalid input)"}`,
    );
    this.pump();
    return r;
  }

  /** 0-based place in the queue, or undefined when not queued. */
  position(r: EmulatedRequest): number | undefined {
    const i = this.queue.indexOf(r);
    return i < 0 ? undefined : i;
  }

  /** Cancels: a queued request ends at once; a running one is signalled (see Behaviour). */
  cancel(r: EmulatedRequest): { status: number; body: unknown } {
    this.o.stats.cancels++;
    // fal answers 400 ALREADY_COMPLETED once a request is over (docs, queue cancel).
    if (r.state === "COMPLETED") return { status: 400, body: { status: "ALREADY_COMPLETED" } };
    r.cancelRequested = true;
    if (r.state === "IN_PROGRESS" && this.o.behaviour.cancelRunning === "signal") {
      this.addLog(r, "Cancellation requested; the app decides whether to stop.", "WARN");
      return { status: 202, body: { status: "CANCELLATION_REQUESTED" } };
    }
    if (r.state === "IN_QUEUE") this.queue.splice(this.queue.indexOf(r), 1);
    else this.inProgress--;
    const message = "Request cancelled by the client.";
    this.complete(r, {
      status: 499,
      body: { detail: message },
      statusError: { error: message, errorType: "client_cancelled" },
    });
    this.pump();
    return { status: 202, body: { status: "CANCELLATION_REQUESTED" } };
  }

  /** Stops every timer. */
  close(): void {
    this.closed = true;
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
  }

  addLog(r: EmulatedRequest, message: string, level = "INFO"): void {
    r.logs.push({
      message,
      level,
      source: "USER",
      timestamp: new Date(this.clock.now()).toISOString(),
    });
    r.listeners.forEach((l) => l());
  }

  private later(ms: number, fn: () => void): void {
    const t = this.clock.setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }

  private pump(): void {
    while (this.inProgress < this.o.slots) {
      const now = this.clock.now();
      const next = this.queue.find((r) => r.eligibleAt <= now);
      if (!next) {
        // A queued request may become eligible later (queue latency): look again then.
        if (this.queue.length)
          this.later(Math.max(1, Math.min(...this.queue.map((r) => r.eligibleAt)) - now), () =>
            this.pump(),
          );
        return;
      }
      this.queue.splice(this.queue.indexOf(next), 1);
      this.start(next);
    }
  }

  private start(r: EmulatedRequest): void {
    this.inProgress++;
    this.o.stats.maxInProgress = Math.max(this.o.stats.maxInProgress, this.inProgress);
    r.state = "IN_PROGRESS";
    r.startedAt = this.clock.now();
    this.queue.forEach((q) => q.listeners.forEach((l) => l()));
    if (!r.input) {
      // fal validates inside the runner: bad input runs briefly and its result is the 422.
      this.later(1, () => this.finish(r, { status: 422, body: { detail: r.invalid } }));
      return;
    }
    const input = r.input;
    this.addLog(
      r,
      `Starting generation (${input.duration}s, optimizer ${input.prompt_optimizer ? "on" : "off"})`,
    );
    const policy = this.o.faults.violatesPolicy(input.prompt);
    const rendered = policy ? Promise.resolve("") : this.o.render(input, r.endpoint);
    this.later(
      this.o.progressLatencyMs / 2,
      () => r.state === "IN_PROGRESS" && this.addLog(r, "Generating frames: 50%"),
    );
    const minDone = new Promise<void>((resolve) => this.later(this.o.progressLatencyMs, resolve));
    Promise.all([rendered, minDone])
      .then(
        ([file]) => this.outcomeFor(r, input, file, policy),
        (error: Error) =>
          // An image fal's runner could not download or MiniMax refuses: the request's 422.
          error instanceof ImageInputError
            ? { status: 422, body: { detail: [error.problem] } }
            : this.failure(`render failed: ${error.message}`),
      )
      .then((outcome) => this.finish(r, outcome))
      .catch((error: Error) => this.o.log(`finishing ${r.id} failed: ${error.message}`));
  }

  private failure(detail: string): NonNullable<EmulatedRequest["outcome"]> {
    this.o.stats.failedGenerations++;
    // fal's own fixture for an application failure: COMPLETED, then a 500 from the result fetch.
    if (this.o.behaviour.failureShape === "fal")
      return { status: 500, body: { detail: "Internal Server Error" } };
    return {
      status: 500,
      body: { detail, error_type: "internal_server_error" },
      statusError: { error: detail, errorType: "internal_server_error" },
    };
  }

  private async outcomeFor(
    r: EmulatedRequest,
    input: EmulatedInput,
    file: string,
    policy: boolean,
  ): Promise<NonNullable<EmulatedRequest["outcome"]>> {
    if (policy) {
      const body = {
        detail: [
          {
            loc: ["body", "prompt"],
            msg: "The prompt was flagged by content moderation.",
            type: "content_policy_violation",
            ctx: { categories: ["emulated"] },
          },
        ],
      };
      return {
        status: 422,
        body,
        ...(this.o.behaviour.failureShape === "status-error"
          ? {
              statusError: {
                error: "Unprocessable Entity: content policy violation",
                errorType: "content_policy_violation",
              },
            }
          : {}),
      };
    }
    if (this.o.faults.generationFails(input.prompt))
      return this.failure("Generation failed (injected fault)");
    const fileId = randomUUID().replaceAll("-", "");
    const { size } = await stat(file);
    this.files.set(fileId, file);
    const sized = this.o.faults.omitFileSize ? {} : { file_size: size };
    return {
      status: 200,
      fileId,
      body: { video: { content_type: "video/mp4", file_name: "output.mp4", ...sized } },
    };
  }

  private finish(r: EmulatedRequest, outcome: NonNullable<EmulatedRequest["outcome"]>): void {
    // A cancel may have ended it while we looked at the file.
    if (r.state === "COMPLETED" || this.closed) return;
    this.inProgress--;
    this.complete(r, outcome);
    this.pump();
  }

  private complete(r: EmulatedRequest, outcome: NonNullable<EmulatedRequest["outcome"]>): void {
    r.outcome = outcome;
    r.state = "COMPLETED";
    r.completedAt = this.clock.now();
    this.o.stats.completed++;
    endpointStats(this.o.stats, r.endpoint).completed++;
    if (outcome.status === 200 && r.input) this.bill(r);
    const failed = outcome.status !== 200;
    this.addLog(
      r,
      failed ? `Generation ended with HTTP ${outcome.status}` : "Generation complete",
      failed ? "ERROR" : "INFO",
    );
    this.o.onComplete(r);
  }

  private bill(r: EmulatedRequest): void {
    const input = r.input!;
    // The endpoint's record prices the clip (per second or per video), at the account's price.
    const { seconds, usd } = priceOf(r.endpoint, input, {
      unitPriceUsd: this.o.unitPriceUsd(r.endpoint),
    });
    for (const b of [this.o.stats.billed, endpointStats(this.o.stats, r.endpoint).billed]) {
      b.requests++;
      b.seconds += seconds;
      // Whole micro-dollars, so the bill adds up exactly like the report's.
      b.usd = Math.round(b.usd * 1e6 + usd * 1e6) / 1e6;
    }
    const h = inputHash(r.body ?? input);
    this.o.stats.billed.byInput[h] = (this.o.stats.billed.byInput[h] ?? 0) + 1;
  }
}
