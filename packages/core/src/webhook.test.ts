import { createHash, generateKeyPairSync, sign } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { verifyFalWebhook } from "./index.js";

// A local JWKS server stands in for rest.fal.ai / rest.alpha.fal.ai (unreachable here).
function signed(privateKey: ReturnType<typeof generateKeyPairSync>["privateKey"], body: string) {
  const ts = String(Math.floor(Date.now() / 1000));
  const msg = ["req-1", "user-1", ts, createHash("sha256").update(body).digest("hex")].join("\n");
  return {
    "x-fal-webhook-request-id": "req-1",
    "x-fal-webhook-user-id": "user-1",
    "x-fal-webhook-timestamp": ts,
    "x-fal-webhook-signature": sign(null, Buffer.from(msg), privateKey).toString("hex"),
  };
}

describe("verifyFalWebhook key sets", () => {
  it("accepts keys from either JWKS host, and fetches again once when fal has rotated its key", async () => {
    const k1 = generateKeyPairSync("ed25519");
    const k2 = generateKeyPairSync("ed25519");
    let current = k1;
    let fetches = 0;
    const server = createServer((req, res) => {
      if (req.url === "/down/jwks.json") {
        res.writeHead(503).end();
        return;
      }
      fetches++;
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({
          keys: [
            { ...current.publicKey.export({ format: "jwk" }), kid: current === k1 ? "k1" : "k2" },
          ],
        }),
      );
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const jwks = [`${base}/down/jwks.json`, `${base}/up/jwks.json`];
      await expect(
        verifyFalWebhook(signed(k1.privateKey, "{}"), "{}", { jwks }),
      ).resolves.toMatchObject({ requestId: "req-1" });
      expect(fetches).toBe(1);
      current = k2;
      await expect(
        verifyFalWebhook(signed(k2.privateKey, "{}"), "{}", { jwks }),
      ).resolves.toMatchObject({ requestId: "req-1" });
      expect(fetches).toBe(2);
      // A signature no key of fal's makes: refused after one refetch.
      const forged = generateKeyPairSync("ed25519");
      await expect(
        verifyFalWebhook(signed(forged.privateKey, "{}"), "{}", { jwks }),
      ).rejects.toMatchObject({ code: "webhook_invalid" });
      expect(fetches).toBe(3);
    } finally {
      server.close();
    }
  });
});
