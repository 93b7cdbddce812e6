import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A real S3-compatible server (s3rver) on loopback, with a switch that makes it answer 5xx. */
export interface TestS3Server {
  /** The endpoint for the AWS SDK (`AWS_ENDPOINT_URL_S3`), path-style. */
  endpoint: string;
  /** A bucket made at start. */
  bucket: string;
  /** Environment that points the AWS SDK's standard settings at this server. */
  env: Record<string, string>;
  /** Answers the next `count` requests with 503 SlowDown, as S3 does under load. */
  failNext(count: number): void;
  /** Requests answered 503 so far. */
  failed(): number;
  close(): Promise<void>;
}

const SLOW_DOWN =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>' +
  "<Message>Please reduce your request rate.</Message></Error>";

/**
 * Starts s3rver (files in a temp folder) behind a loopback HTTP server of our own, so a test
 * can make the bucket fail for a while. s3rver ignores conditional writes: tests that need
 * coordination use Redis, as the store does.
 */
export async function startTestS3(bucket = "hailuo-test"): Promise<TestS3Server> {
  const directory = await mkdtemp(join(tmpdir(), "hailuo-s3-"));
  // Loaded here, not at the top: most test files never start one, and s3rver takes ~0.25 s to load.
  const { default: S3rver } = await import("s3rver");
  const s3 = new S3rver({ directory, silent: true, configureBuckets: [{ name: bucket }] });
  await s3.configureBuckets();
  const app = s3.callback();
  let failing = 0;
  let failedCount = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (failing > 0) {
      failing--;
      failedCount++;
      // The request body is drained so the client sees the answer, not a reset.
      req.resume();
      res.writeHead(503, { "content-type": "application/xml", "retry-after": "0" });
      return void res.end(SLOW_DOWN);
    }
    app(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    bucket,
    env: {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: "us-east-1",
      // s3rver's fixed test credentials.
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
    },
    failNext: (count) => void (failing = count),
    failed: () => failedCount,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(directory, { recursive: true, force: true });
    },
  };
}
