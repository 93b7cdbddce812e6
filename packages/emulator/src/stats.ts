/** Counters that prove what was (and was not) paid for. */
export interface EmulatorStats {
  submits: { total: number; byInput: Record<string, number> };
  syncRuns: number;
  statusCalls: number;
  streamCalls: number;
  resultsServed: number;
  cancels: number;
  completed: number;
  failedGenerations: number;
  faultsInjected: Record<string, number>;
  webhooks: { delivered: number; attempts: number; failed: number };
  downloads: number;
  maxInProgress: number;
  /** Calls of fal's Platform APIs (pricing, requests by endpoint). */
  platformCalls: number;
  /**
   * What fal would bill: every request that completed with a video, at its seconds × price.
   * fal bills successful outputs only, never failures, cancellations or queue time (fal docs,
   * Model APIs → Pricing: "you pay only for successful outputs").
   */
  billed: { requests: number; seconds: number; usd: number; byInput: Record<string, number> };
}

/** Fresh counters. */
export function newStats(): EmulatorStats {
  return {
    submits: { total: 0, byInput: {} },
    syncRuns: 0,
    statusCalls: 0,
    streamCalls: 0,
    resultsServed: 0,
    cancels: 0,
    completed: 0,
    failedGenerations: 0,
    faultsInjected: {},
    webhooks: { delivered: 0, attempts: 0, failed: 0 },
    downloads: 0,
    maxInProgress: 0,
    platformCalls: 0,
    billed: { requests: 0, seconds: 0, usd: 0, byInput: {} },
  };
}
