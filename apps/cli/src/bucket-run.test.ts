import { randomBytes } from "node:crypto";
import { spawnCli } from "./test-cli.js";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createHailuoClient } from "@hailuo/core";
import { inputHash, type Emulator } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import { QUEUES } from "@hailuo/queue";
import type { ReviewState } from "@hailuo/review";
import { planRun, runManifest } from "@hailuo/runner";
import { createRedisS3Store, redisKeysOf, s3ClientFromEnv } from "@hailuo/store";
import {
  decodeErrors,
  ffprobeFacts,
  holdableClock,
  makeTempDir,
  startTestEmulator,
  startTestRedis,
  startTestS3,
  waitFor,
  type TestRedis,
  type TestS3Server,
} from "@hailuo/test-utils";

// A run kept in a bucket (s3rver) with its records in a Redis of this test's own (restarted
// mid-run), worked by two worker processes that share no folder; one is SIGKILLed.
const SCENES = 3;

describe("a run kept in a bucket, worked by workers that share no folder", () => {
  let emu: Emulator;
  let s3: TestS3Server;
  let redisServer: TestRedis;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  // A test that stops a process mid-run holds the emulator's clock until it has: no generation
  // finishes first, however slow the machine.
  const gate = holdableClock();
  beforeAll(async () => {
    [emu, s3, redisServer, tmp] = await Promise.all([
      startTestEmulator({ slots: 8, progressLatencyMs: 1000, render: "shared", clock: gate.clock }),
      startTestS3(),
      startTestRedis(),
      makeTempDir(),
    ]);
  });
  afterEach(() => gate.release());
  afterAll(async () => {
    await Promise.all([emu.close(), s3.close(), redisServer.close()]);
    await tmp.cleanup();
  });
  // Every process has its own working and temp folder: nothing is shared but Redis and the bucket.
  const place = async (name: string) => {
    const dir = join(tmp.dir, name);
    await mkdir(join(dir, "tmp"), { recursive: true });
    return dir;
  };
  const envIn = (dir: string) => ({
    ...s3.env,
    FAL_EMULATOR_URL: emu.url,
    TMPDIR: join(dir, "tmp"),
  });
  const bucketFile = async (key: string) => {
    const client = (await s3ClientFromEnv(s3.env)) as S3Client;
    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    return Buffer.from(await got.Body!.transformToByteArray());
  };

  it("survives a killed worker, a Redis restart and a bucket answering 503: one submit per scene-take, bill = report, the film in the bucket", async () => {
    const tag = randomBytes(3).toString("hex");
    const prefix = "hailuo-bucket";
    const url = `s3://${s3.bucket}/team/run-${tag}`;
    const text = `name: bucket\nscenes:\n${Array.from({ length: SCENES }, (_, i) => `  - id: s${i}\n    prompt: bucket ${tag} scene ${i}\n`).join("")}assemble:\n  transition: cut\nthumbnails: { preview: none }\n`;
    const manifestFile = join(tmp.dir, "bucket.yaml");
    await writeFile(manifestFile, text);
    const q = ["--redis", redisServer.url, "--prefix", prefix];

    const enq = await place("enqueue");
    const enqueue = spawnCli(
      ["run", manifestFile, ...q, "--store", url, "--concurrency", "3"],
      envIn(enq),
      enq,
    );
    expect(await enqueue.done, enqueue.output()).toBe(0);

    const worker = ["worker", ...q, "--concurrency", "2", "--lock-ms", "3000", "--retries", "4"];
    const [dirA, dirB] = [await place("worker-a"), await place("worker-b")];
    // Held until Redis is back: the run is still going through the kill and the restart.
    gate.hold();
    const a = spawnCli(worker, envIn(dirA), dirA);
    const b = spawnCli(worker, envIn(dirB), dirB);

    const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
    redis.on("error", () => {});
    const log = redisKeysOf(url, prefix).log;
    const records = async () =>
      (await redis.xrange(log, "-", "+")).map(([, f]) => JSON.parse(f[1]!) as { t: string });
    // A holds live requests (submitted, not yet done) when it is killed.
    await waitFor(async () => {
      const r = await records();
      return r.filter((x) => x.t === "submitted").length >= 3 && a.output().includes("started");
    }, 60_000);
    a.child.kill("SIGKILL");
    expect(await a.done).toBe(null);
    const doneBefore = (await records()).filter((x) => x.t === "done").length;
    expect(doneBefore, "the run is still going when Redis restarts").toBeLessThan(SCENES);
    // Redis dies and comes back (its append-only file synced every write); the bucket refuses
    // the next uploads for a while.
    await redisServer.restart();
    s3.failNext(8);
    gate.release();

    const assemble = new Queue(QUEUES.assemble, { connection: redis, prefix });
    const generate = new Queue(QUEUES.generate, { connection: redis, prefix });
    try {
      await waitFor(
        async () => (await assemble.getJobCounts("completed")).completed === 1,
        120_000,
      ).catch((e) => {
        throw new Error(`${e.message}\nworker B said:\n${b.output().slice(-3000)}`);
      });
      const counts = await generate.getJobCounts("completed", "failed");
      expect(counts, b.output().slice(-3000)).toMatchObject({ completed: SCENES, failed: 0 });
    } finally {
      await assemble.close();
      await generate.close();
    }
    expect(s3.failed(), "the bucket answered 503").toBeGreaterThanOrEqual(8);

    // Fact 1: one submit per scene-take.
    const plan = planRun(parseManifest(text, { file: "bucket.yaml" }));
    const stats = emu.stats();
    expect(plan.map((p) => stats.submits.byInput[inputHash(p.input)] ?? 0)).toEqual(
      Array(SCENES).fill(1),
    );
    // Fact 2: the report in the bucket equals the emulator's bill to the cent.
    const client = (await s3ClientFromEnv(s3.env)) as S3Client;
    const get = (name: string) => bucketFile(`team/run-${tag}/${name}`);
    const report = JSON.parse((await get("report.json")).toString("utf8"));
    expect(report.totals.billedUsd).toBeCloseTo(stats.billed.usd, 6);
    expect(report.totals.done).toBe(SCENES);
    // Fact 3: every clip in the bucket decodes completely; the film and the page are there too.
    const listed = await client.send(
      new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `team/run-${tag}/` }),
    );
    const names = (listed.Contents ?? []).map((o) => o.Key!.slice(`team/run-${tag}/`.length));
    const clips = names.filter((n) => n.startsWith("clips/"));
    expect(clips).toHaveLength(SCENES);
    const check = join(tmp.dir, "check");
    await mkdir(check, { recursive: true });
    for (const name of [...clips, "film.mp4"]) {
      const file = join(check, name.replace(/\//g, "_"));
      await writeFile(file, await get(name));
      expect(await decodeErrors(file), `${name} decodes`).toBe("");
    }
    expect((await ffprobeFacts(join(check, "film.mp4"))).durationS).toBeCloseTo(SCENES * 6, 0);
    expect(names).toContain("index.html");

    // `status` from any folder, by the bucket's address.
    const elsewhere = await place("elsewhere");
    const status = spawnCli(["status", url, ...q], envIn(elsewhere), elsewhere);
    expect(await status.done, status.output()).toBe(0);
    expect(status.output()).toContain(`${SCENES} done, 0 failed`);

    // The film made again by the bucket's address, from another folder: its clips come down
    // checked, the new film goes up.
    const again = spawnCli(
      ["assemble", url, ...q, "--transition", "fade:0.5"],
      envIn(elsewhere),
      elsewhere,
    );
    expect(await again.done, again.output()).toBe(0);
    expect(again.output()).toContain(`film: ${url}/film.mp4`);
    await writeFile(join(check, "film2.mp4"), await get("film.mp4"));
    expect((await ffprobeFacts(join(check, "film2.mp4"))).durationS).toBeCloseTo(
      SCENES * 6 - (SCENES - 1) * 0.5,
      0,
    );

    b.child.kill("SIGTERM");
    expect(await b.done).toBe(0);
    redis.disconnect();
  }, 180_000);

  it("carries a bucket run on in one process from a folder that has nothing: Ctrl-C, resume, a re-roll; one submit per scene-take, bill = report", async () => {
    const tag = randomBytes(3).toString("hex");
    // The emulator is this file's: its bill for this test is what it billed from here.
    const billedBefore = emu.stats().billed.usd;
    const prefix = "hailuo-local";
    const url = `s3://${s3.bucket}/team/local-${tag}`;
    const text = `name: local\nscenes:\n${Array.from({ length: SCENES }, (_, i) => `  - id: s${i}\n    prompt: local ${tag} scene ${i}\n`).join("")}assemble:\n  transition: cut\nthumbnails: { preview: none }\n`;
    const manifestFile = join(tmp.dir, `local-${tag}.yaml`);
    await writeFile(manifestFile, text);
    const q = ["--redis", redisServer.url, "--prefix", prefix];
    const enq = await place(`enqueue-${tag}`);
    const enqueue = spawnCli(["run", manifestFile, ...q, "--store", url], envIn(enq), enq);
    expect(await enqueue.done, enqueue.output()).toBe(0);

    // No worker ever comes: this process takes the run over, and is stopped mid-run.
    const here = await place(`here-${tag}`);
    const redis = new Redis(redisServer.url);
    const records = async () =>
      (await redis.xrange(redisKeysOf(url, prefix).log, "-", "+")).map(
        ([, f]) => JSON.parse(f[1]!) as { t: string; scene?: string; take?: number },
      );
    // Held: the run is still going when the Ctrl-C comes.
    gate.hold();
    const first = spawnCli(["resume", url, ...q, "--take-over"], envIn(here), here);
    await waitFor(async () => (await records()).some((r) => r.t === "submitted"), 60_000);
    first.child.kill("SIGINT");
    expect(await first.done, first.output()).toBe(130);
    gate.release();
    expect(first.output()).toContain(`hailuo resume ${url}`);

    const elsewhere = await place(`elsewhere-${tag}`);
    const second = spawnCli(["resume", url, ...q], envIn(elsewhere), elsewhere);
    expect(await second.done, second.output()).toBe(0);
    expect(second.output()).toContain(`film: ${url}/film.mp4`);

    const reroll = spawnCli(["reroll", url, "s1", ...q, "--takes", "1"], envIn(here), here);
    expect(await reroll.done, reroll.output()).toBe(0);

    // Fact 1: one submit per scene-take, the re-rolled take's included (a take asks what take 1
    // asked, so the emulator counts both under one input).
    const m = parseManifest(text, { file: "local.yaml" });
    m.scenes[1]!.takes = 2;
    const inputs = planRun(m).map((p) => inputHash(p.input));
    const stats = emu.stats();
    expect(inputs.map((h) => stats.submits.byInput[h] ?? 0)).toEqual(
      inputs.map((h) => inputs.filter((x) => x === h).length),
    );
    // Fact 2: the report in the bucket equals the emulator's bill for this run to the cent.
    const report = JSON.parse((await bucketFile(`team/local-${tag}/report.json`)).toString());
    expect(report.totals.billedUsd).toBeCloseTo(stats.billed.usd - billedBefore, 6);
    expect(report.totals.billedRequests).toBe(SCENES + 1);
    // Fact 3: every clip the bucket holds decodes completely.
    const check = join(here, "check");
    await mkdir(check, { recursive: true });
    const clips = report.items.map((i: { file: string }) => i.file);
    expect(clips).toHaveLength(SCENES + 1);
    for (const name of clips) {
      const file = join(check, name.replace(/\//g, "_"));
      await writeFile(file, await bucketFile(`team/local-${tag}/${name}`));
      expect(await decodeErrors(file), `${name} decodes`).toBe("");
    }
    redis.disconnect();
  }, 120_000);

  it("reviews a bucket run from a folder that has nothing: its state and clips, a pick, an assemble that reaches the bucket", async () => {
    const tag = randomBytes(3).toString("hex");
    const prefix = "hailuo-review";
    const url = `s3://${s3.bucket}/team/review-${tag}`;
    const text = `name: review\nscenes:\n  - id: s0\n    prompt: review ${tag} scene 0\n  - id: s1\n    prompt: review ${tag} scene 1\n    takes: 2\nassemble:\n  transition: cut\nthumbnails: { preview: none }\n`;
    const q = ["--redis", redisServer.url, "--prefix", prefix];
    // The run is made in this process, into the bucket (the page is what is under test here).
    const redis = new Redis(redisServer.url);
    const made = await runManifest({
      manifest: parseManifest(text, { file: join(tmp.dir, `review-${tag}.yaml`) }),
      runDir: createRedisS3Store({
        url,
        redis,
        s3: s3ClientFromEnv(s3.env),
        keyPrefix: prefix,
        scratchDir: await place(`maker-${tag}`),
      }),
      client: createHailuoClient({ emulatorUrl: emu.url }),
      backend: { kind: "emulator", url: emu.url },
    });
    expect(made.exitCode).toBe(0);

    const viewer = await place(`viewer-${tag}`);
    const review = spawnCli(["review", url, ...q], envIn(viewer), viewer);
    try {
      await waitFor(() => /token=\w+/.test(review.output()), 30_000);
      const page = new URL(/http:\/\/\S+token=\w+/.exec(review.output())![0]);
      const api = (path: string, init: RequestInit = {}) =>
        fetch(`${page.origin}${path}`, {
          ...init,
          headers: { "x-hailuo-token": page.searchParams.get("token")!, ...init.headers },
        });
      const state = async () => (await (await api("/api/state")).json()) as ReviewState;
      const takes = (st: ReviewState) =>
        st.scenes.flatMap((sc) => sc.takes.map((t) => ({ scene: sc.id, ...t })));
      const first = takes(await state());
      expect(first.map((t) => `${t.scene}#${t.take}:${t.status}`)).toEqual([
        "s0#1:done",
        "s1#1:done",
        "s1#2:done",
      ]);
      // A clip the page plays is the bucket's object, byte for byte.
      const clip = first.find((t) => t.scene === "s1" && t.take === 2)!.clip!;
      const served = Buffer.from(await (await api(`/files/${clip}`)).arrayBuffer());
      expect(served.equals(await bucketFile(`team/review-${tag}/${clip}`))).toBe(true);

      const pick = await api("/api/pick", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ scene: "s1", take: 2 }),
      });
      expect(pick.status, await pick.clone().text()).toBe(200);
      expect(
        JSON.parse((await redis.get(redisKeysOf(url, prefix).doc("picks.json")))!),
      ).toMatchObject({ picks: { s1: 2 } });

      const job = (await (await api("/api/assemble", { method: "POST" })).json()) as { id: number };
      let jobs: ReviewState["jobs"] = [];
      await waitFor(async () => {
        jobs = (await state()).jobs;
        return jobs.some((j) => j.id === job.id && j.state !== "running");
      }, 60_000);
      expect(jobs.find((j) => j.id === job.id)).toMatchObject({ state: "ok" });
      // The page says the film holds the pick; the film in the bucket decodes, its length the sum.
      const after = takes(await state());
      expect(after.filter((t) => t.inFilm).map((t) => `${t.scene}#${t.take}`)).toEqual([
        "s0#1",
        "s1#2",
      ]);
      const film = join(viewer, "film.mp4");
      await writeFile(film, await bucketFile(`team/review-${tag}/film.mp4`));
      expect(await decodeErrors(film)).toBe("");
      expect((await ffprobeFacts(film)).durationS).toBeCloseTo(12, 0);
    } finally {
      review.child.kill("SIGINT");
      expect(await review.done, review.output()).toBe(0);
      redis.disconnect();
    }
  }, 120_000);
});
