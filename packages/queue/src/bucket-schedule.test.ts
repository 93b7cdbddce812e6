import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import { inputHash } from "@hailuo/emulator";
import { planRun, readRunReport } from "@hailuo/runner";
import { loadJobDefinition, manifestForRun, readHistory, runStamp } from "@hailuo/scheduler";
import { s3ClientFromEnv } from "@hailuo/store";
import { decodeErrors, startTestS3, waitFor, type TestS3Server } from "@hailuo/test-utils";
import { QUEUES, createRunStores, runIdFor, startWorker, type RunningWorker } from "./index.js";
import { REDIS, queueFixture } from "./test-queue.js";

// A scheduled job whose runs live in a bucket (s3rver): a fire is taken by a worker and its
// clips, report and page land in the bucket, its records in Redis.
const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);

describe("a scheduled job with store: s3://…", () => {
  const fx = queueFixture("bsched");
  let s3: TestS3Server;
  let worker: RunningWorker;
  beforeAll(async () => {
    s3 = await startTestS3();
    // The worker finds the bucket through the AWS SDK's standard environment, as in production.
    Object.assign(process.env, s3.env);
    worker = await startWorker({
      redisUrl: REDIS,
      prefix: fx.prefix,
      client: createHailuoClient({ emulatorUrl: fx.emu.url }),
      retryBaseDelayMs: 10,
    });
  });
  afterAll(async () => {
    await worker.close();
    await s3.close();
  });

  it("lands each fire's run in the bucket: one submit per scene-take, bill = report, clips decode", async () => {
    const tag = randomBytes(3).toString("hex");
    const dir = join(fx.dir, "jobs", "nightly");
    await mkdir(dir, { recursive: true });
    const jobFile = join(dir, "job.yaml");
    const store = `s3://${s3.bucket}/nightly-${tag}`;
    await writeFile(
      jobFile,
      `schedule: "0 7 * * *"\nstore: ${store}\noutput: ../../out\nmanifest:\n  name: nightly\n  scenes:\n    - prompt: "nightly ${tag} one"\n    - prompt: "nightly ${tag} two"\n  thumbnails: { preview: none }\n`,
    );
    const def = await loadJobDefinition(jobFile);
    expect(def.store).toBe(store);
    const schedule = new Queue(QUEUES.schedule, { connection: fx.redis, prefix: fx.prefix });
    const assemble = new Queue(QUEUES.assemble, { connection: fx.redis, prefix: fx.prefix });
    const runAt = `${store}/${runStamp(new Date(T0), def.timeZone)}`;
    try {
      await schedule.add("scheduled-run", { jobFile }, { jobId: `fire-${tag}`, timestamp: T0 });
      await waitFor(
        async () => (await assemble.getJobState(`${runIdFor(runAt)}-assemble`)) === "completed",
        60_000,
      );
    } finally {
      await schedule.close();
      await assemble.close();
    }
    const stores = createRunStores({ redis: fx.redis, keyPrefix: fx.prefix });
    try {
      const run = stores.of(runAt);
      const report = await readRunReport(run);
      // One submit per scene-take.
      const plan = planRun(await manifestForRun(def, new Date(T0)));
      expect(plan.map((p) => fx.emu.stats().submits.byInput[inputHash(p.input)] ?? 0)).toEqual([
        1, 1,
      ]);
      // The report (in Redis and in the bucket) equals the emulator's bill.
      expect(report.totals.billedUsd).toBeCloseTo(fx.emu.stats().billed.usd, 6);
      const s3client = (await s3ClientFromEnv(s3.env)) as S3Client;
      const key = (name: string) => ({
        Bucket: s3.bucket,
        Key: `${runAt.slice(`s3://${s3.bucket}/`.length)}/${name}`,
      });
      const bytes = async (name: string) =>
        Buffer.from(
          await (await s3client.send(new GetObjectCommand(key(name)))).Body!.transformToByteArray(),
        );
      const kept = JSON.parse((await bytes("report.json")).toString("utf8"));
      expect(kept.totals.billedUsd).toBeCloseTo(report.totals.billedUsd, 6);
      expect((await bytes("index.html")).length).toBeGreaterThan(1000);
      // Every clip in the bucket decodes completely.
      for (const item of report.items) {
        const file = join(fx.dir, `${tag}-${item.scene}.mp4`);
        await writeFile(file, await bytes(item.file!));
        expect(await decodeErrors(file), item.file).toBe("");
      }
      expect((await readHistory(def.outputRoot)).map((h) => h.status)).toEqual(["enqueued", "ok"]);
    } finally {
      await stores.close();
    }
  }, 90_000);
});
