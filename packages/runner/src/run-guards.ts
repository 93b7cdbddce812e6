import type { HailuoHandle, HailuoStatus } from "@hailuo/core";
import { HailuoError } from "@hailuo/shared";
import type { RunEvent } from "./events.js";
import type { ItemState } from "./run-state.js";

/** Spend held against a budget: every submit reserves its price first. */
export interface Budget {
  /** Asked before every submit of generation `key`; false means the budget has no room for it. */
  reserve(usd: number, key: string): boolean | Promise<boolean>;
  /**
   * Gives back one reservation of generation `key` whose submit created nothing billable; a no-op
   * when this budget holds none for it (a request re-attached from an earlier process).
   */
  release(usd: number, key: string): void | Promise<void>;
}

/** A request in flight, as cancel-on-exit sees it. */
export interface LiveEntry {
  handle: HailuoHandle;
  state?: HailuoStatus["state"];
}

/**
 * What every item of a run shares and the money depends on: the budget, the run's stop, fal's
 * reach and Platform API, and the requests claimed by steps. One per run (per run and process for
 * a queue worker), built by `createRunGuards` for the local runner and the worker alike.
 */
export interface RunGuards {
  budget: Budget;
  /** Every other item would fail the same way (bad key, full disk, missing ffmpeg): stop the run. */
  stopRun(error: HailuoError): void;
  /** Each submit's fate as far as reaching fal goes: the run stops after a few in a row never left. */
  submitReached(reached: boolean, error?: HailuoError): void;
  /** False once fal's Platform API could not answer: lost submits are then flagged, not looked up. */
  platformAvailable(): boolean;
  /** fal's Platform API could not answer. */
  platformUnavailable(error: HailuoError): void;
  /** Every request id the journal knows or a step has claimed (a found request is surely not ours already). */
  knownRequestIds(): ReadonlySet<string>;
  /** Claims requests found on fal's list before their records land, so no other step takes them. */
  claimRequestIds(ids: readonly string[]): void;
  /** A submit left (true) or came back (false): the caller waits for these on Ctrl-C. */
  submitInFlight(inFlight: boolean): void;
  /** Which request of generation `key` is in flight (for cancel-on-exit); undefined when none. */
  live(key: string, entry: LiveEntry | undefined): void;
}

/** Submits in a row that never reached fal (each after the core's own re-sends) before the run stops. */
export const UNREACHABLE_STOP_AFTER = 2;

/** A budget held in this process's memory. No `budgetUsd`: no limit. */
export function memoryBudget(budgetUsd: number | undefined): Budget {
  let committedUsd = 0;
  const reserved = new Map<string, number>();
  return {
    // Spent and in flight may never pass the budget: each submit reserves its price first.
    reserve(usd, key) {
      if (budgetUsd !== undefined && committedUsd + usd > budgetUsd + 1e-9) return false;
      committedUsd += usd;
      reserved.set(key, (reserved.get(key) ?? 0) + 1);
      return true;
    },
    // Only what this run reserved is given back: a re-attached request's came from another process.
    release(usd, key) {
      const n = reserved.get(key) ?? 0;
      if (n <= 0) return;
      reserved.set(key, n - 1);
      committedUsd -= usd;
    },
  };
}

/** What `createRunGuards` needs. */
export interface RunGuardsOptions {
  /** The items' states as the journal (and this process's steps) know them. */
  states: () => Iterable<ItemState>;
  budget: Budget;
  emit: (event: RunEvent) => void;
  stopRun: (error: HailuoError) => void;
  /** @default nothing to wait for */
  submitInFlight?: (inFlight: boolean) => void;
  /** @default no cancel-on-exit */
  live?: (key: string, entry: LiveEntry | undefined) => void;
}

/** The guards of one run, the same rules for a local run and a queue worker. */
export function createRunGuards(o: RunGuardsOptions): RunGuards {
  // Requests a step found on fal's list and is journaling: no other step may take them meanwhile.
  const claimed = new Set<string>();
  let platformAvailable = true;
  let unreachable = 0;
  return {
    budget: o.budget,
    stopRun: o.stopRun,
    // fal cannot be reached at all (DNS, refused): say so once and stop, instead of retrying every clip.
    submitReached(reached, e) {
      unreachable = reached ? 0 : unreachable + 1;
      if (unreachable === UNREACHABLE_STOP_AFTER) {
        o.stopRun(
          new HailuoError(
            "unreachable",
            `${e?.message ?? "fal could not be reached"}; ${UNREACHABLE_STOP_AFTER} submits in a row never left this machine, so the run stopped. Check the network, or use the emulator: unset FAL_KEY for the built-in one, or set FAL_EMULATOR_URL`,
            { retryable: false },
          ),
        );
      }
    },
    platformAvailable: () => platformAvailable,
    platformUnavailable(e) {
      if (!platformAvailable) return;
      platformAvailable = false;
      o.emit({
        type: "warning",
        message: `${e.message}; submits whose answer was lost are flagged as possible double charges instead of looked up`,
      });
    },
    knownRequestIds: () => new Set([...claimed, ...[...o.states()].flatMap((st) => st.requestIds)]),
    claimRequestIds: (ids) => ids.forEach((id) => claimed.add(id)),
    submitInFlight: o.submitInFlight ?? (() => {}),
    live: o.live ?? (() => {}),
  };
}
