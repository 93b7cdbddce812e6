import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * What the gateway does to the next submits (POSTs): `502` forwards the submit (fal queues it),
 * then answers 502 as a broken gateway would; `reset` forwards it, then cuts the connection;
 * `delay` holds the answer until `release()` is called.
 */
export type GatewayFault = "502" | "reset" | "delay";

/** A small HTTP proxy in front of the emulator that loses or delays submit answers. */
export interface FaultyGateway {
  url: string;
  /** Applies `fault` to the next `count` submits. */
  failNextSubmits(fault: GatewayFault, count?: number): void;
  /** Submits that reached the gateway and are being held (fault `delay`). */
  held(): number;
  /** Lets every held submit answer. */
  release(): void;
  close(): Promise<void>;
}

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Starts a gateway on loopback that forwards everything to `targetUrl`. Mimics the faulty gateway
 * between a client and fal (the one thing we cannot reach here): tests use it to prove that a
 * submit whose answer was lost after fal queued it is never paid for twice unknowingly.
 */
export async function startFaultyGateway(targetUrl: string): Promise<FaultyGateway> {
  const faults: GatewayFault[] = [];
  const holding = new Set<() => void>();
  const forward = async (req: IncomingMessage, res: ServerResponse) => {
    const isSubmit = req.method === "POST";
    const fault = isSubmit ? faults.shift() : undefined;
    const headers = Object.fromEntries(
      Object.entries(req.headers).filter(
        ([k]) => !["host", "connection", "content-length"].includes(k),
      ),
    ) as Record<string, string>;
    const upstream = await fetch(`${targetUrl}${req.url}`, {
      method: req.method,
      headers,
      body: isSubmit ? await body(req) : undefined,
    });
    const payload = Buffer.from(await upstream.arrayBuffer());
    if (fault === "502") {
      res.writeHead(502, { "content-type": "text/html" });
      return void res.end("<html><body><h1>502 Bad Gateway</h1></body></html>");
    }
    if (fault === "reset") return void res.socket?.destroy();
    if (fault === "delay") await new Promise<void>((resolve) => holding.add(resolve));
    const out: Record<string, string> = {};
    upstream.headers.forEach((v, k) => {
      if (!["content-length", "transfer-encoding", "connection", "content-encoding"].includes(k))
        out[k] = v;
    });
    res.writeHead(upstream.status, { ...out, "content-length": payload.length });
    res.end(payload);
  };
  const server = createServer((req, res) => {
    forward(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const release = () => {
    for (const r of holding) r();
    holding.clear();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    failNextSubmits: (fault, count = 1) => faults.push(...Array<GatewayFault>(count).fill(fault)),
    held: () => holding.size,
    release,
    async close() {
      release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
