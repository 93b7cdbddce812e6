import { HailuoError } from "@hailuo/shared";

/** The AWS SDK's S3 module (types only: the SDK is loaded when a bucket is first used). */
export type S3Sdk = typeof import("@aws-sdk/client-s3");

let sdkLoad: Promise<S3Sdk> | undefined;
/** The AWS SDK's S3 client module, loaded once, when a bucket is first used. */
export function s3Sdk(): Promise<S3Sdk> {
  return (sdkLoad ??= withSdk(() => import("@aws-sdk/client-s3")));
}

/**
 * Loads a part of the AWS SDK, an optional dependency: only bucket runs need it, and it is a
 * large install. Missing, it is named with the command that adds it.
 */
export async function withSdk<T>(load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ERR_MODULE_NOT_FOUND") throw error;
    throw new HailuoError(
      "config",
      "s3:// stores need the AWS SDK, an optional dependency: npm install @aws-sdk/client-s3@3.1178.0 @aws-sdk/lib-storage@3.1178.0",
      { retryable: false, cause: error },
    );
  }
}
