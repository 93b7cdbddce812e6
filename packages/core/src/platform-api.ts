import { emulatorHostUrl } from "@hailuo/endpoints";
import { HailuoError, redactSecrets } from "@hailuo/shared";

/**
 * fal's Platform APIs on https://api.fal.ai/v1 (fal docs, Platform APIs; shapes in
 * shared/reference/fal-protocol.md §14). The one module that knows them.
 */
export const FAL_PLATFORM_URL = "https://api.fal.ai/v1";

/** One price row of `GET /models/pricing`. */
export interface FalPrice {
  endpoint_id: string;
  unit_price: number;
  unit: string;
  currency: string;
}

/** One row of `GET /models/requests/by-endpoint`. */
export interface FalRequestRecord {
  request_id: string;
  endpoint_id: string;
  sent_at: string;
  started_at: string | null;
  ended_at: string | null;
  status_code: number | null;
  duration: number | null;
  json_input: unknown;
  json_output: unknown;
}

/** The Platform API could not answer (no scope, network): callers fall back to what they know. */
export class PlatformUnavailableError extends HailuoError {
  constructor(message: string, options: { cause?: unknown; status?: number } = {}) {
    super("platform_unavailable", message, {
      cause: options.cause,
      retryable: false,
      details: { status: options.status },
    });
  }
}

/** Calls of the Platform APIs with the client's key and transport. */
export interface PlatformClient {
  /** The account's price for an endpoint, or undefined when fal lists none. */
  pricing(endpointId: string, options?: { signal?: AbortSignal }): Promise<FalPrice | undefined>;
  /** Requests sent to an endpoint in a time window, every page. */
  requestsByEndpoint(
    query: { endpointId: string; start: Date; end: Date; limit?: number },
    options?: { signal?: AbortSignal },
  ): Promise<FalRequestRecord[]>;
}

/** Options of `createPlatformClient`. */
export interface PlatformClientOptions {
  credentials: string;
  /** Sends every call to an emulator's `/__host/api.fal.ai/…` instead. */
  emulatorUrl?: string;
  fetch?: typeof globalThis.fetch;
}

/** A Platform API client; `createHailuoClient` makes one as `client.platform`. */
export function createPlatformClient(options: PlatformClientOptions): PlatformClient {
  const fetchFn = options.fetch ?? globalThis.fetch;
  async function get<T>(path: string, params: URLSearchParams, signal?: AbortSignal): Promise<T> {
    const real = `${FAL_PLATFORM_URL}${path}?${params}`;
    const url = options.emulatorUrl ? emulatorHostUrl(options.emulatorUrl, real) : real;
    let res: Response;
    try {
      res = await fetchFn(url, {
        headers: { authorization: `Key ${options.credentials}`, accept: "application/json" },
        signal: signal ?? AbortSignal.timeout(15_000),
      });
    } catch (error) {
      throw new PlatformUnavailableError(
        `fal's Platform API (${path}) could not be reached: ${redactSecrets((error as Error).message)}`,
        { cause: error },
      );
    }
    if (!res.ok) {
      const text = redactSecrets((await res.text().catch(() => "")).slice(0, 200));
      throw new PlatformUnavailableError(
        `fal's Platform API (${path}) answered HTTP ${res.status}${res.status === 403 ? " (the key lacks the scope for it)" : ""}: ${text}`,
        { status: res.status },
      );
    }
    return (await res.json()) as T;
  }
  return {
    async pricing(endpointId, opts = {}) {
      const body = await get<{ prices?: FalPrice[] }>(
        "/models/pricing",
        new URLSearchParams({ endpoint_id: endpointId }),
        opts.signal,
      );
      return body.prices?.find((p) => p.endpoint_id === endpointId);
    },
    async requestsByEndpoint(q, opts = {}) {
      const items: FalRequestRecord[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 100; page++) {
        const params = new URLSearchParams({
          endpoint_id: q.endpointId,
          start: q.start.toISOString(),
          end: q.end.toISOString(),
          limit: String(q.limit ?? 100),
        });
        if (cursor) params.set("cursor", cursor);
        const body = await get<{
          items?: FalRequestRecord[];
          next_cursor?: string | null;
          has_more?: boolean;
        }>("/models/requests/by-endpoint", params, opts.signal);
        items.push(...(body.items ?? []));
        if (!body.has_more || !body.next_cursor) break;
        cursor = body.next_cursor;
      }
      return items;
    },
  };
}
