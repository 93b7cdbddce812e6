// The same run kept in a folder and in Redis + an S3-compatible bucket (s3rver on loopback), on
// one emulator setting, alternated twice: the bucket's uploads should overlap generation, so its
// wall time stays within 2% of the folder's (issue 22). Prints ratios: machines are noisy.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { createHailuoClient } from "@hailuo/core";
import { createEmulator } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import { runManifest, type RunAt } from "@hailuo/runner";
import { createRedisS3Store, redisKeysOf, s3ClientFromEnv } from "@hailuo/store";
import { startTestS3 } from "@hailuo/test-utils";

const SCENES = Number(process.env.BENCH_SCENES ?? 40);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 2000);
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

const cacheDir = join(tmpdir(), "hailuo-bench-cache");
const root = await mkdtemp(join(tmpdir(), "hailuo-store-bench-"));
const s3 = await startTestS3("hailuo-bench");
const redis = new Redis(REDIS_URL);
const keyPrefix = `hailuo-bench-${process.pid}`;
let runs = 0;

/** Wall milliseconds of one whole run (plan, submits, downloads, saves, reports) into `kind`. */
async function timedRun(kind: "local" | "redis+s3"): Promise<number> {
  const n = runs++;
  const emu = await createEmulator({
    slots: CONCURRENCY,
    progressLatencyMs: LATENCY_MS,
    render: "shared",
    cacheDir,
  });
  const dir = join(root, `run-${n}`);
  const url = `s3://${s3.bucket}/bench-${process.pid}/run-${n}`;
  const run: RunAt =
    kind === "local"
      ? dir
      : createRedisS3Store({
          url,
          redis,
          s3: s3ClientFromEnv(s3.env),
          keyPrefix,
          scratchDir: dir,
        });
  // Prompts differ per run: nothing is reused from an earlier run.
  const manifest = parseManifest(
    `name: store-bench\nscenes:\n${Array.from({ length: SCENES }, (_, i) => `  - prompt: store bench ${n} scene ${i}\n`).join("")}`,
    { file: "store-bench.yaml" },
  );
  try {
    const t0 = performance.now();
    const result = await runManifest({
      manifest,
      runDir: run,
      client: createHailuoClient({ emulatorUrl: emu.url }),
      concurrency: CONCURRENCY,
      priceUsdPerSecond: 0.045,
    });
    const ms = performance.now() - t0;
    if (result.report.totals.done !== SCENES)
      throw new Error(`${kind}: only ${result.report.totals.done} of ${SCENES} clips finished`);
    return ms;
  } finally {
    await emu.close();
    if (kind === "redis+s3") {
      const k = redisKeysOf(url, keyPrefix);
      await redis.del(k.log, k.lease, k.fence, k.doc("run.json"), k.doc("picks.json"));
    }
  }
}

try {
  // Warm the shared clip once so no measurement pays the one-off render.
  const warm = await createEmulator({
    slots: 1,
    progressLatencyMs: 10,
    render: "shared",
    cacheDir,
  });
  await createHailuoClient({ emulatorUrl: warm.url }).generate({ prompt: "warm-up" });
  await warm.close();
  const ideal = Math.ceil(SCENES / CONCURRENCY) * LATENCY_MS;
  console.log(
    `store bench: ${SCENES} scenes, concurrency ${CONCURRENCY}, ${LATENCY_MS} ms per generation (ideal ${(ideal / 1000).toFixed(1)} s)`,
  );
  for (const round of [1, 2]) {
    const local = await timedRun("local");
    const bucket = await timedRun("redis+s3");
    console.log(
      `  round ${round}: folder ${(local / 1000).toFixed(2)} s, redis+s3 ${(bucket / 1000).toFixed(2)} s, ratio redis+s3/folder ${(bucket / local).toFixed(3)}`,
    );
  }
} finally {
  redis.disconnect();
  await s3.close();
  await rm(root, { recursive: true, force: true });
}
