import { createHash, sign, type KeyObject } from "node:crypto";
import type { EmulatedRequest } from "./request-store.js";
import type { EmulatorStats } from "./stats.js";

/** fal retries an undelivered webhook 10 times over about 2 hours (fal docs, webhooks). */
export const FAL_WEBHOOK_ATTEMPTS = 10;
/** First retry delay that, doubled each time, spreads 10 attempts over ~2 h (15 s × (2^9 − 1) ≈ 2.1 h). */
export const FAL_WEBHOOK_FIRST_RETRY_MS = 15_000;

/** Options of the sender. */
export interface WebhookOptions {
  privateKey: KeyObject;
  stats: EmulatorStats;
  attempts: number;
  /** First retry delay, doubled each time; tests scale it down. */
  firstRetryMs: number;
  later: (ms: number, fn: () => void) => void;
  /** The body of a completed request as its result fetch would answer it. */
  payloadOf: (r: EmulatedRequest) => unknown;
  log: (line: string) => void;
}

/** Delivers a completed request to its webhook URL, signed like fal (ED25519 over id, user, time, body hash), with retries. */
export function createWebhookSender(o: WebhookOptions): (r: EmulatedRequest) => void {
  const deliver = (r: EmulatedRequest, attempt: number): void => {
    const out = r.outcome!;
    const payload =
      out.status === 200
        ? { request_id: r.id, gateway_request_id: r.id, status: "OK", payload: o.payloadOf(r) }
        : {
            request_id: r.id,
            gateway_request_id: r.id,
            status: "ERROR",
            error: `Invalid status code: ${out.status}`,
            payload: out.body,
          };
    const raw = JSON.stringify(payload);
    const ts = String(Math.floor(Date.now() / 1000));
    const userId = "emulator-user";
    const msg = [r.id, userId, ts, createHash("sha256").update(raw).digest("hex")].join("\n");
    const signature = sign(null, Buffer.from(msg), o.privateKey).toString("hex");
    o.stats.webhooks.attempts++;
    const retry = (why: string) => {
      if (attempt + 1 >= o.attempts) {
        o.stats.webhooks.failed++;
        o.log(`webhook ${r.id} gave up after ${attempt + 1} attempts: ${why}`);
        return;
      }
      o.later(o.firstRetryMs * 2 ** attempt, () => deliver(r, attempt + 1));
    };
    fetch(r.webhookUrl!, {
      method: "POST",
      body: raw,
      headers: {
        "content-type": "application/json",
        "x-fal-webhook-request-id": r.id,
        "x-fal-webhook-user-id": userId,
        "x-fal-webhook-timestamp": ts,
        "x-fal-webhook-signature": signature,
      },
      signal: AbortSignal.timeout(15_000),
    }).then(
      (res) => {
        if (!res.ok) return retry(`HTTP ${res.status}`);
        o.stats.webhooks.delivered++;
        o.log(`webhook ${r.id} delivered`);
      },
      (e: Error) => retry(e.message),
    );
  };
  return (r) => deliver(r, 0);
}
