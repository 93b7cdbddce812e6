import { HAILUO_ENDPOINT, type HailuoClient } from "@hailuo/core";
import { HailuoError, type Clock } from "@hailuo/shared";
import type { RunStore } from "@hailuo/store";
import type { RunEvent } from "./events.js";
import type { ImageInputs } from "./image-inputs.js";
import type { RunGuards } from "./run-guards.js";
import type { JournalRecord, JournalStore, StoredRecord } from "./journal-store.js";
import { applyRecord, type ItemState } from "./run-state.js";

/** The run would cost more than its budget allows. */
export class BudgetError extends HailuoError {
  constructor(message: string) {
    super("budget", message, { retryable: false });
  }
}

/** A budget depends on a price fal could not confirm. */
export class PriceUnknownError extends HailuoError {
  constructor(
    budgetUsd: number,
    price: { usdPerSecond: number; reason?: string; unitPriceUsd?: number; unit?: string },
    /** What did not happen: "submitted", "enqueued". */
    nothing: string,
    /** The endpoint whose price is not known. @default the seed's */
    endpointId: string = HAILUO_ENDPOINT,
  ) {
    const seed = endpointId === HAILUO_ENDPOINT;
    // The seed's words as they always were; another endpoint's price is in its own unit.
    const how = seed
      ? `Pass --price USD_PER_SECOND (your account's price for ${HAILUO_ENDPOINT}), or --assume-list-price to budget at the list price $${price.usdPerSecond}/s`
      : `Pass --assume-list-price to budget at ${endpointId}'s list price $${price.unitPriceUsd ?? price.usdPerSecond}/${price.unit ?? "second"}`;
    super(
      "price_unknown",
      `--budget $${budgetUsd.toFixed(2)} needs the account's price${seed ? "" : ` for ${endpointId}`}, and fal's pricing API could not give it (${price.reason ?? "no answer"}); nothing was ${nothing}. ${how}`,
      { retryable: false },
    );
  }
}

/** A clip's submits kept losing their answers and fal's request list cannot explain them. */
export class AnswersLostError extends HailuoError {
  constructor(
    message: string,
    /** Submits of this clip whose answers were lost and are not explained. */
    readonly lostSubmits: number,
  ) {
    super("answers_lost", message, { retryable: false });
  }
}

/** How one generation ended in this process. */
export type ItemOutcome = "done" | "cached" | "failed" | "interrupted";

/** Everything one item step needs; the local runner and the queue worker both provide it. */
export interface ItemContext {
  /** Where the run lives: clips are made in `store.dir` and kept with `putArtifact`. */
  store: RunStore;
  client: HailuoClient;
  /** Where its records go (only appended to here). */
  journal: Pick<JournalStore, "append">;
  /** What the journal says about this item (updated in place). */
  state: ItemState;
  /** The clip on disk is whole and unchanged: nothing to do. */
  intact: boolean;
  /** Stops new submits and waiting (the first Ctrl-C). */
  signal: AbortSignal;
  /** Aborts a submit already on the wire; later than `signal`, so its request id still reaches the journal. @default signal */
  submitSignal?: AbortSignal;
  /**
   * Awaited before each send of a submit, the first and every one after a 429: rejects once the
   * run (or the queue job) is another's, so a process paused past its hold never sends.
   */
  beforeSend?: () => Promise<void>;
  emit: (event: RunEvent) => void;
  /** Retries after the first attempt. @default 3 */
  retries?: number;
  /**
   * Submits sent again after one whose answer was lost, while fal's request list cannot tell
   * whether it was queued (each may be billed). Past this the run stops. @default 1
   */
  lostAnswerResends?: number;
  /** @default 900000 */
  itemTimeoutMs?: number;
  waitMode?: "stream" | "poll";
  /** @default 1000 */
  retryBaseDelayMs?: number;
  /** @default 30000 */
  retryMaxDelayMs?: number;
  /** Reuse clips of identical inputs. @default true */
  cache?: boolean;
  clock?: Clock;
  /**
   * Holds one of the account's fal slots while the request is submitted and awaited; it is given
   * back as soon as the output URL is known, so fal never idles while a clip is hashed. @default no limit
   */
  falSlot?: <T>(work: () => Promise<T>) => Promise<T>;
  /** The small pool downloads, hashes and probes run in. @default no limit */
  saveSlot?: <T>(work: () => Promise<T>) => Promise<T>;
  /** The run's budget, stop, fal reach and request claims: the same rules for every caller. */
  guards: RunGuards;
  /**
   * Makes an image-to-video generation's images URLs fal reads (uploads journaled by content).
   * @default none: a generation with images fails without a submit
   */
  images?: ImageInputs;
}

/**
 * The live path of the one reducer: journals `record`, then applies it to the item's state as
 * stored. `bestEffort`: the state changes even when the append fails (on a full disk the record
 * may not land; the journal without it says no less, and the step must still know it).
 */
export async function journalAndApply<R extends JournalRecord & { key: string }>(
  ctx: Pick<ItemContext, "journal" | "state">,
  record: R,
  options: { bestEffort?: boolean } = {},
): Promise<void> {
  let stored: R & { at: string };
  try {
    stored = await ctx.journal.append(record);
  } catch (error) {
    if (!options.bestEffort) throw error;
    stored = { ...record, at: new Date().toISOString() };
  }
  applyRecord(ctx.state, stored as StoredRecord & { key: string }, true);
}

/** Validation and content-policy failures repeat for the same input: only an edit (a new key) retries them. */
export function isFinalFailure(s: ItemState | undefined): boolean {
  return (
    s?.phase === "failed" &&
    !s.live &&
    (s.error?.code === "content_policy" || s.error?.code === "validation")
  );
}

/**
 * The item was paid for (a finished request; with `cache`, a saved clip): it is saved again from
 * its output, never submitted again, even when the journal no longer knows the output's URL.
 */
export function isPaid(s: ItemState | undefined, cache: boolean): boolean {
  return Boolean(s && (s.phase === "completed" || (s.phase === "done" && cache)));
}

/** The paid output's URL this item can still be saved from, if the journal knows it. */
export function paidOutput(s: ItemState | undefined, cache: boolean): string | undefined {
  return isPaid(s, cache) ? s!.videoUrl : undefined;
}
