// The run store's public face: one interface, a folder and a Redis + S3 implementation.
export type {
  AcquireOptions,
  ArtifactInfo,
  LogRead,
  Ownership,
  RecordLog,
  RunDocument,
  RunStore,
  S3ClientLike,
} from "./run-store.js";
export {
  createLocalStore,
  acquireRunLock,
  runLockHeld,
  RunLockedError,
  JOURNAL_FILE,
  type RunLockOptions,
} from "./local-store.js";
export {
  createRedisS3Store,
  redisKeysOf,
  StoreError,
  type RedisS3StoreOptions,
} from "./redis-s3-store.js";
export {
  isBucketUrl,
  parseStoreUrl,
  runIdOf,
  s3ClientFromEnv,
  StoreUrlError,
} from "./store-url.js";
