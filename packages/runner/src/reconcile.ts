import {
  HAILUO_ENDPOINT,
  type HailuoClient,
  type HailuoHandle,
  type HailuoInput,
} from "@hailuo/core";

/** fal's clock and ours may differ: a submit is looked for from this long before we sent it. */
export const SKEW_MS = 120_000;

/** True when a request's `json_input` is this input (fal fills the endpoint's defaults). */
export function sameInput(raw: unknown, input: HailuoInput): boolean {
  if (!raw || typeof raw !== "object") return false;
  const r = raw as Record<string, unknown>;
  return (
    r.prompt === input.prompt &&
    (r.duration ?? "6") === input.duration &&
    (r.prompt_optimizer ?? true) === input.prompt_optimizer
  );
}

/**
 * Looks up submits whose answer was lost in fal's request list (Platform API, requests by
 * endpoint): requests for this input sent since the first lost submit, oldest first (the caller
 * drops those its journal already knows). Throws PlatformUnavailableError when fal cannot answer
 * (no scope, network), so the caller flags them instead.
 */
export async function findLostSubmits(
  client: HailuoClient,
  input: HailuoInput,
  sentAts: string[],
  signal?: AbortSignal,
): Promise<HailuoHandle[]> {
  if (!sentAts.length) return [];
  const first = Math.min(...sentAts.map((t) => Date.parse(t)));
  const rows = await client.platform.requestsByEndpoint(
    {
      endpointId: HAILUO_ENDPOINT,
      start: new Date(first - SKEW_MS),
      end: new Date(Date.now() + SKEW_MS),
    },
    { signal },
  );
  return rows
    .filter((r) => sameInput(r.json_input, input))
    .sort((a, b) => Date.parse(a.sent_at) - Date.parse(b.sent_at))
    .map((r) => ({ endpoint: HAILUO_ENDPOINT, requestId: r.request_id, submittedAt: r.sent_at }));
}
