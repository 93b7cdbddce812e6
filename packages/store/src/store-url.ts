import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { HailuoError } from "@hailuo/shared";
import { s3Sdk } from "./aws-sdk.js";
import type { S3ClientLike } from "./run-store.js";

/** A store address that cannot be used. */
export class StoreUrlError extends HailuoError {
  constructor(
    message: string,
    /** The address as given. */
    readonly url: string,
  ) {
    super("usage", message, { retryable: false });
  }
}

/** True for an address of a bucket store (`s3://…`) rather than a folder. */
export function isBucketUrl(url: string): boolean {
  return /^s3:\/\//i.test(url);
}

/** Splits `s3://bucket/prefix/` into its bucket and prefix (no slashes at either end). */
export function parseStoreUrl(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(url);
  // S3's bucket naming rules: 3-63 of lowercase letters, digits, dots and hyphens.
  if (!m || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(m[1]!))
    throw new StoreUrlError(
      `${url} is not a bucket address; expected s3://BUCKET/PREFIX (a bucket name of 3 to 63 lowercase letters, digits, dots or hyphens)`,
      url,
    );
  const prefix = m[2]!.replace(/^\/+|\/+$/g, "");
  if (prefix.split("/").some((p) => p === "." || p === ".."))
    throw new StoreUrlError(`${url}: a prefix may not hold "." or ".." parts`, url);
  return { bucket: m[1]!, prefix };
}

/** A run's stable id: the same folder or bucket address always gives the same id. */
export function runIdOf(url: string): string {
  const canonical = isBucketUrl(url) ? url.replace(/\/+$/, "") : resolve(url);
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
}

/**
 * An S3 client from the AWS SDK's standard environment (the SDK is loaded here, not at start-up) (`AWS_REGION`, `AWS_ACCESS_KEY_ID`,
 * `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`). With a custom endpoint
 * (MinIO, R2, s3rver) addressing is path-style, which those servers need.
 */
export async function s3ClientFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<S3ClientLike> {
  // The SDK warns on Node 20 that releases from 2027 need Node 22; ours is pinned to one that
  // supports 20 (package.json), so the warning would only alarm users of every bucket command.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = env;
  const { S3Client } = await s3Sdk();
  return new S3Client({
    // Without keys in `env`, the SDK's own chain (profiles, instance roles) finds them.
    ...(accessKeyId && secretAccessKey
      ? { credentials: { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN } }
      : {}),
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || "us-east-1",
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    // Throttling and 5xx are retried by the SDK (its standard mode, 3 attempts) below our retries.
    maxAttempts: 3,
  });
}
