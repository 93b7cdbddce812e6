import { createHash, createPublicKey, verify, type JsonWebKey } from "node:crypto";
import { WebhookVerificationError } from "./hailuo-errors.js";

/** fal's JWKS location for webhook keys (fal-js moved its REST calls here). */
export const FAL_JWKS_URL = "https://rest.fal.ai/.well-known/jwks.json";
/**
 * Where webhook keys are looked up by default: fal-js's host and the older one fal's docs and
 * most integrations use (reference fal-protocol.md §14); keys from both are accepted.
 */
export const FAL_JWKS_URLS = [
  FAL_JWKS_URL,
  "https://rest.alpha.fal.ai/.well-known/jwks.json",
] as const;

/** A JSON Web Key Set as fal serves it. */
export interface Jwks {
  keys: (JsonWebKey & { kid?: string })[];
}

/** Options of `verifyFalWebhook`. */
export interface VerifyWebhookOptions {
  /** The key set itself, or the URL(s) to fetch it from. @default FAL_JWKS_URLS */
  jwks?: Jwks | string | readonly string[];
  /** Accepted clock skew in seconds. @default 300 */
  toleranceS?: number;
  /** @default Date.now() */
  nowMs?: number;
  /** @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
  /** Aborts the JWKS fetch. */
  signal?: AbortSignal;
}

/** The verified identity of a webhook delivery. */
export interface VerifiedWebhook {
  requestId: string;
  userId: string;
  timestampS: number;
}

const JWKS_TTL_MS = 24 * 60 * 60 * 1000;
const jwksCache = new Map<string, { jwks: Jwks; fetchedAt: number }>();

async function fetchJwks(
  url: string,
  fetchFn: typeof globalThis.fetch,
  nowMs: number,
  force: boolean,
  signal?: AbortSignal,
): Promise<Jwks> {
  const cached = jwksCache.get(url);
  if (!force && cached && nowMs - cached.fetchedAt < JWKS_TTL_MS) return cached.jwks;
  const res = await fetchFn(url, { signal });
  if (!res.ok)
    throw new WebhookVerificationError(`could not fetch JWKS from ${url}: HTTP ${res.status}`);
  const jwks = (await res.json()) as Jwks;
  jwksCache.set(url, { jwks, fetchedAt: nowMs });
  return jwks;
}

/** Every key of every source that answered (cached 24 h; `force` fetches again). */
async function loadJwks(
  source: Jwks | string | readonly string[],
  fetchFn: typeof globalThis.fetch,
  nowMs: number,
  force: boolean,
  signal?: AbortSignal,
): Promise<Jwks> {
  if (typeof source !== "string" && !Array.isArray(source)) return source as Jwks;
  const urls = typeof source === "string" ? [source] : (source as readonly string[]);
  const sets = await Promise.allSettled(
    urls.map((u) => fetchJwks(u, fetchFn, nowMs, force, signal)),
  );
  const ok = sets.filter((r): r is PromiseFulfilledResult<Jwks> => r.status === "fulfilled");
  if (!ok.length) throw (sets[0] as PromiseRejectedResult).reason;
  return { keys: ok.flatMap((r) => r.value.keys ?? []) };
}

function verifiedBy(jwks: Jwks, message: Buffer, sig: Buffer): boolean {
  for (const jwk of jwks.keys ?? []) {
    if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || !jwk.x) continue;
    try {
      const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: jwk.x }, format: "jwk" });
      if (verify(null, message, key, sig)) return true;
    } catch {
      // A malformed key in the set must not hide a valid one.
    }
  }
  return false;
}

function header(
  headers: Headers | Record<string, string | string[] | undefined>,
  name: string,
): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const v =
    headers[name] ??
    headers[name.toLowerCase()] ??
    Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Verifies a fal webhook: ED25519 over `request_id\nuser_id\ntimestamp\nsha256hex(body)`, within
 * a 300 s window, against any Ed25519 key of the JWKS (both fal hosts by default, cached 24 h,
 * fetched again once when no cached key matches: a rotated key). Throws
 * WebhookVerificationError when anything is missing or wrong.
 */
export async function verifyFalWebhook(
  headers: Headers | Record<string, string | string[] | undefined>,
  rawBody: Uint8Array | string,
  options: VerifyWebhookOptions = {},
): Promise<VerifiedWebhook> {
  const { toleranceS = 300, nowMs = Date.now(), fetch: fetchFn = globalThis.fetch } = options;
  const requestId = header(headers, "x-fal-webhook-request-id");
  const userId = header(headers, "x-fal-webhook-user-id");
  const timestamp = header(headers, "x-fal-webhook-timestamp");
  const signature = header(headers, "x-fal-webhook-signature");
  if (!requestId || !userId || !timestamp || !signature) {
    throw new WebhookVerificationError(
      "webhook is missing one of the x-fal-webhook-{request-id,user-id,timestamp,signature} headers",
    );
  }
  const timestampS = Number(timestamp);
  if (!Number.isFinite(timestampS) || Math.abs(nowMs / 1000 - timestampS) > toleranceS) {
    throw new WebhookVerificationError(
      `webhook timestamp ${timestamp} is outside the ${toleranceS} s window`,
    );
  }
  if (!/^[0-9a-f]{128}$/i.test(signature))
    throw new WebhookVerificationError("webhook signature is not 64 bytes of hex");
  const bodyHash = createHash("sha256").update(rawBody).digest("hex");
  const message = Buffer.from([requestId, userId, timestamp, bodyHash].join("\n"));
  const sig = Buffer.from(signature, "hex");
  const source = options.jwks ?? FAL_JWKS_URLS;
  if (verifiedBy(await loadJwks(source, fetchFn, nowMs, false, options.signal), message, sig))
    return { requestId, userId, timestampS };
  // fal may have rotated its key since we cached the set: fetch it again once before refusing.
  if (typeof source !== "object" || Array.isArray(source)) {
    if (verifiedBy(await loadJwks(source, fetchFn, nowMs, true, options.signal), message, sig))
      return { requestId, userId, timestampS };
  }
  throw new WebhookVerificationError("webhook signature does not match any key in the JWKS");
}
