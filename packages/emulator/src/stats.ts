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
  /** The same counts per endpoint id (only endpoints that saw a request are listed). */
  byEndpoint: Record<string, EndpointStats>;
  /** fal's storage API: uploads started, finished (bytes received), and their bytes. */
  uploads: { initiated: number; completed: number; bytes: number };
}

/** Submits and the bill of one endpoint. */
export interface EndpointStats {
  submits: number;
  syncRuns: number;
  completed: number;
  billed: { requests: number; seconds: number; usd: number };
}

/** The counters of one endpoint, created on first use. */
export function endpointStats(stats: EmulatorStats, endpointId: string): EndpointStats {
  return (stats.byEndpoint[endpointId] ??= {
    submits: 0,
    syncRuns: 0,
    completed: 0,
    billed: { requests: 0, seconds: 0, usd: 0 },
  });
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
    byEndpoint: {},
    uploads: { initiated: 0, completed: 0, bytes: 0 },
  };
}
