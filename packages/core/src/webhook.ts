import { createHash, createPublicKey, verify, type JsonWebKey } from "node:crypto";
import { WebhookVerificationError } from "./hailuo-errors.js";

/** fal's default JWKS location for webhook keys. */
export const FAL_JWKS_URL = "https://rest.fal.ai/.well-known/jwks.json";

/** A JSON Web Key Set as fal serves it. */
export interface Jwks {
  keys: (JsonWebKey & { kid?: string })[];
}

/** Options of `verifyFalWebhook`. */
export interface VerifyWebhookOptions {
  /** The key set itself, or the URL to fetch it from. @default FAL_JWKS_URL */
  jwks?: Jwks | string;
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

async function loadJwks(source: Jwks | string, fetchFn: typeof globalThis.fetch, nowMs: number, signal?: AbortSignal): Promise<Jwks> {
  if (typeof source !== "string") return source;
  const cached = jwksCache.get(source);
  if (cached && nowMs - cached.fetchedAt < JWKS_TTL_MS) return cached.jwks;
  const res = await fetchFn(source, { signal });
  if (!res.ok) throw new WebhookVerificationError(`could not fetch JWKS from ${source}: HTTP ${res.status}`);
  const jwks = (await res.json()) as Jwks;
  jwksCache.set(source, { jwks, fetchedAt: nowMs });
  return jwks;
}

function header(headers: Headers | Record<string, string | string[] | undefined>, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const v = headers[name] ?? headers[name.toLowerCase()] ?? Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Verifies a fal webhook: ED25519 over `request_id\nuser_id\ntimestamp\nsha256hex(body)`, within
 * a 300 s window, against any Ed25519 key of the JWKS (fetched and cached 24 h). Throws
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
    throw new WebhookVerificationError("webhook is missing one of the x-fal-webhook-{request-id,user-id,timestamp,signature} headers");
  }
  const timestampS = Number(timestamp);
  if (!Number.isFinite(timestampS) || Math.abs(nowMs / 1000 - timestampS) > toleranceS) {
    throw new WebhookVerificationError(`webhook timestamp ${timestamp} is outside the ${toleranceS} s window`);
  }
  if (!/^[0-9a-f]{128}$/i.test(signature)) throw new WebhookVerificationError("webhook signature is not 64 bytes of hex");
  const bodyHash = createHash("sha256").update(rawBody).digest("hex");
  const message = Buffer.from([requestId, userId, timestamp, bodyHash].join("\n"));
  const sig = Buffer.from(signature, "hex");
  const jwks = await loadJwks(options.jwks ?? FAL_JWKS_URL, fetchFn, nowMs, options.signal);
  for (const jwk of jwks.keys ?? []) {
    if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || !jwk.x) continue;
    try {
      const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: jwk.x }, format: "jwk" });
      if (verify(null, message, key, sig)) return { requestId, userId, timestampS };
    } catch {
      // A malformed key in the set must not hide a valid one.
    }
  }
  throw new WebhookVerificationError("webhook signature does not match any key in the JWKS");
}
