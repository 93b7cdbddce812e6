import {
  HAILUO_ENDPOINT,
  findEndpoint,
  type HailuoClient,
  type HailuoHandle,
  type HailuoInput,
} from "@hailuo/core";
import type { PlanInput } from "./plan.js";

/** fal's clock and ours may differ: a submit is looked for from this long before we sent it. */
export const SKEW_MS = 120_000;

/**
 * True when a request's `json_input` is this input (fal fills the endpoint's defaults). The seed
 * compares its three fields as it always has; another endpoint every field of its record, the
 * images by URL where the input has them (a clip adopted from disk knows no upload's URL).
 */
export function sameInput(
  raw: unknown,
  input: (HailuoInput | PlanInput) & { image_url?: string; end_image_url?: string },
): boolean {
  if (!raw || typeof raw !== "object") return false;
  const r = raw as Record<string, unknown>;
  const endpoint = (input as PlanInput).endpoint ?? HAILUO_ENDPOINT;
  if (endpoint === HAILUO_ENDPOINT)
    return (
      r.prompt === input.prompt &&
      (r.duration ?? "6") === input.duration &&
      (r.prompt_optimizer ?? true) === input.prompt_optimizer
    );
  const record = findEndpoint(endpoint);
  if (!record) return false;
  const ours = input as unknown as Record<string, unknown>;
  return Object.entries(record.fields).every(([name, spec]) => {
    if (spec.type === "image") return ours[name] === undefined || r[name] === ours[name];
    const fill = (v: unknown) =>
      v ?? (spec.type === "enum" || spec.type === "boolean" ? spec.default : undefined);
    return String(fill(r[name])) === String(fill(ours[name]));
  });
}

/**
 * Looks up submits whose answer was lost in fal's request list (Platform API, requests by
 * endpoint: the input's own): requests for this input sent since the first lost submit, oldest
 * first (the caller drops those its journal already knows). Throws PlatformUnavailableError when
 * fal cannot answer (no scope, network), so the caller flags them instead.
 */
export async function findLostSubmits(
  client: HailuoClient,
  input: HailuoInput | PlanInput,
  sentAts: string[],
  signal?: AbortSignal,
): Promise<HailuoHandle[]> {
  if (!sentAts.length) return [];
  const endpoint = (input as PlanInput).endpoint ?? HAILUO_ENDPOINT;
  const first = Math.min(...sentAts.map((t) => Date.parse(t)));
  const rows = await client.platform.requestsByEndpoint(
    {
      endpointId: endpoint,
      start: new Date(first - SKEW_MS),
      end: new Date(Date.now() + SKEW_MS),
    },
    { signal },
  );
  return rows
    .filter((r) => sameInput(r.json_input, input))
    .sort((a, b) => Date.parse(a.sent_at) - Date.parse(b.sent_at))
    .map((r) => ({ endpoint, requestId: r.request_id, submittedAt: r.sent_at }));
}
