import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENDPOINTS, priceOf } from "@hailuo/endpoints";
import type { Emulator } from "./index.js";
import { auth, body, startTestEmulator, untilCompleted } from "./test-http.js";

// Every endpoint of the records over real HTTP: prices, validation, bills, storage, frames.
const Q = "/__host/queue.fal.run";
const I2V_02 = "fal-ai/minimax/hailuo-02/standard/image-to-video";

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(err) : reject(new Error(err))));
  });
}

/** PSNR in dB of two pictures, both scaled to 320×180 (ffmpeg's psnr filter, average). */
async function psnr(a: string, b: string): Promise<number> {
  const log = await run("ffmpeg", [
    ...["-hide_banner", "-i", a, "-i", b],
    ...["-lavfi", "[0:v]scale=320:180[x];[1:v]scale=320:180[y];[x][y]psnr", "-f", "null", "-"],
  ]);
  const m = /average:(inf|[\d.]+)/.exec(log);
  if (!m) throw new Error(`no PSNR in ${log}`);
  return m[1] === "inf" ? Infinity : Number(m[1]);
}

let dir: string;
let start: string;
let end: string;
let dataUri: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "emulator-family-"));
  start = join(dir, "start.png");
  end = join(dir, "end.png");
  // Two different 640×360 pictures (MiniMax wants the short side over 300 px).
  await run("ffmpeg", [
    ...["-loglevel", "error", "-f", "lavfi", "-i"],
    "gradients=s=640x360:c0=0x3060c0:c1=0xe0a040:n=2:seed=1,format=rgb24",
    ...["-frames:v", "1", start],
  ]);
  await run("ffmpeg", [
    ...["-loglevel", "error", "-f", "lavfi", "-i"],
    "gradients=s=640x360:c0=0x20a060:c1=0xc03050:n=3:seed=7,format=rgb24",
    ...["-frames:v", "1", end],
  ]);
  dataUri = `data:image/png;base64,${(await readFile(start)).toString("base64")}`;
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const validBody = (kind: "t2v" | "i2v") =>
  kind === "t2v" ? { prompt: "a hill" } : { prompt: "a hill", image_url: dataUri };

describe("every endpoint of the records", () => {
  it("prices each in its record's unit, and an account price per endpoint", async () => {
    const emu = await startTestEmulator({
      render: "shared",
      unitPricesUsd: { "fal-ai/minimax/hailuo-2.3/pro/text-to-video": 0.4 },
    });
    try {
      const api = `${emu.url}/__host/api.fal.ai/v1/models/pricing`;
      const ids = ENDPOINTS.map((e) => e.id).join(",");
      const { prices } = await body(await fetch(`${api}?endpoint_id=${ids}`, { headers: auth }));
      expect(prices).toEqual(
        ENDPOINTS.map((e) => ({
          endpoint_id: e.id,
          unit_price:
            e.id === "fal-ai/minimax/hailuo-2.3/pro/text-to-video"
              ? 0.4
              : e.price.unit === "second"
                ? e.price.usdPerSecond
                : e.price.usdPerVideo,
          unit: e.price.unit,
          currency: "USD",
        })),
      );
      emu.setPrice(0.05, I2V_02);
      const one = await body(await fetch(`${api}?endpoint_id=${I2V_02}`, { headers: auth }));
      expect(one.prices).toEqual([
        { endpoint_id: I2V_02, unit_price: 0.05, unit: "second", currency: "USD" },
      ]);
      expect(() => emu.setPrice(1, "fal-ai/minimax/nope")).toThrow(/unknown endpoint/);
    } finally {
      await emu.close();
    }
  });

  it.each([
    ["fal-ai/minimax/hailuo-02/standard/image-to-video", { prompt: "a" }, ["body.image_url"]],
    [I2V_02, { prompt: "a", image_url: "not a url" }, ["body.image_url"]],
    [
      I2V_02,
      { prompt: "a", image_url: "https://x/a.png", resolution: "1080P" },
      ["body.resolution"],
    ],
    [
      I2V_02,
      {
        prompt: "a",
        image_url: "https://x/a.png",
        end_image_url: "https://x/b.png",
        resolution: "512P",
      },
      ["body.resolution"],
    ],
    [
      "fal-ai/minimax/hailuo-2.3/standard/text-to-video",
      { prompt: "a", duration: "8" },
      ["body.duration"],
    ],
    [
      "fal-ai/minimax/hailuo-2.3/pro/image-to-video",
      { prompt: "" },
      ["body.prompt", "body.image_url"],
    ],
    // fal's apps ignore fields their model lacks, as pydantic does: nothing to refuse.
    ["fal-ai/minimax/hailuo-2.3/pro/text-to-video", { prompt: "a", duration: "10" }, []],
  ])("validates %s %j from its record", async (endpoint, input, locs) => {
    const emu = await startTestEmulator({ render: "shared", failureShape: "status-error" });
    try {
      const res = await fetch(`${emu.url}${Q}/${endpoint}`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify(input),
      });
      if (!locs.length) return expect(res.status).toBe(200);
      expect(res.status).toBe(422);
      const got = (await body(res)).detail.map((d: { loc: string[] }) => d.loc.join("."));
      expect(got).toEqual(locs);
    } finally {
      await emu.close();
    }
  });

  it("bills each endpoint at its own price, counts per endpoint, lists requests per endpoint", async () => {
    const emu = await startTestEmulator({ render: "shared", slots: 9, progressLatencyMs: 20 });
    try {
      const from = new Date(Date.now() - 1000).toISOString();
      await Promise.all(
        ENDPOINTS.map(async (e) => {
          const res = await fetch(`${emu.url}${Q}/${e.id}`, {
            method: "POST",
            headers: auth,
            body: JSON.stringify(validBody(e.kind)),
          });
          const { status_url } = await body(res);
          await untilCompleted(status_url);
        }),
      );
      const stats = emu.stats();
      let total = 0;
      for (const e of ENDPOINTS) {
        const { usd, seconds } = priceOf(e.id, {});
        total += usd;
        expect(stats.byEndpoint[e.id], e.id).toEqual({
          submits: 1,
          syncRuns: 0,
          completed: 1,
          billed: { requests: 1, seconds, usd },
        });
      }
      expect(stats.billed.requests).toBe(9);
      expect(stats.billed.usd).toBeCloseTo(total, 6);
      // 0.27 + 0.27 + 0.48 + 0.48 + 0.28 + 0.28 + 0.49 + 0.49 + 0.19
      expect(stats.billed.usd).toBe(3.23);
      const listed = await body(
        await fetch(
          `${emu.url}/__host/api.fal.ai/v1/models/requests/by-endpoint?endpoint_id=${I2V_02}&start=${from}`,
          { headers: auth },
        ),
      );
      expect(listed.items.map((i: { endpoint_id: string }) => i.endpoint_id)).toEqual([I2V_02]);
    } finally {
      await emu.close();
    }
  });

  it("an image it cannot fetch or MiniMax would refuse answers the request's 422, unbilled", async () => {
    const emu = await startTestEmulator({ render: "shared", progressLatencyMs: 20 });
    try {
      const tiny = join(dir, "tiny.png");
      await run("ffmpeg", [
        ...["-loglevel", "error", "-f", "lavfi", "-i", "color=c=red:s=200x200", "-frames:v", "1"],
        tiny,
      ]);
      const cases = [
        [
          `${emu.url}/__host/v3.fal.media/files/emulator/${"0".repeat(32)}/x.png`,
          "file_download_error",
        ],
        [`data:image/png;base64,${(await readFile(tiny)).toString("base64")}`, "value_error"],
      ];
      for (const [url, type] of cases) {
        const r = await body(
          await fetch(`${emu.url}${Q}/${I2V_02}`, {
            method: "POST",
            headers: auth,
            body: JSON.stringify({ prompt: "a", image_url: url }),
          }),
        );
        await untilCompleted(r.status_url);
        const res = await fetch(r.response_url, { headers: auth });
        expect(res.status).toBe(422);
        expect((await body(res)).detail[0]).toMatchObject({ loc: ["body", "image_url"], type });
      }
      expect(emu.stats().billed.requests).toBe(0);
    } finally {
      await emu.close();
    }
  });
});

describe("fal's storage upload", () => {
  it("initiate answers {upload_url, file_url}; the PUT needs no key; the file is served as sent", async () => {
    // fal-js libs/client/src/storage.ts: POST rest.fal.ai/storage/upload/initiate, then PUT.
    const emu = await startTestEmulator({ render: "shared", apiKey: "k" });
    try {
      const bytes = await readFile(start);
      const init = await fetch(
        `${emu.url}/__host/rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3`,
        {
          method: "POST",
          headers: { authorization: "Key k", "content-type": "application/json" },
          body: JSON.stringify({ content_type: "image/png", file_name: "start.png" }),
        },
      );
      expect(init.status).toBe(200);
      const { upload_url, file_url } = await body(init);
      expect(file_url).toMatch(
        /\/__host\/v3\.fal\.media\/files\/emulator\/[0-9a-f]{32}\/start\.png$/,
      );
      expect((await fetch(file_url)).status).toBe(404);
      const put = await fetch(upload_url, {
        method: "PUT",
        body: bytes,
        headers: { "content-type": "image/png" },
      });
      expect(put.status).toBe(200);
      const got = await fetch(file_url);
      expect(got.headers.get("content-type")).toBe("image/png");
      expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
      expect(emu.stats().uploads).toEqual({ initiated: 1, completed: 1, bytes: bytes.length });
      const noKey = await fetch(`${emu.url}/__host/rest.fal.ai/storage/upload/initiate`, {
        method: "POST",
        body: "{}",
      });
      expect(noKey.status).toBe(401);
    } finally {
      await emu.close();
    }
  });
});

describe("image-to-video frames", () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startTestEmulator({ progressLatencyMs: 20 });
  });
  afterAll(() => emu.close());

  it("starts on the image itself and ends on the end image (PSNR ≥ 35 dB at 320×180)", async () => {
    const upload = async (file: string) => {
      const { upload_url, file_url } = await body(
        await fetch(`${emu.url}/__host/rest.fal.ai/storage/upload/initiate`, {
          method: "POST",
          headers: auth,
          body: JSON.stringify({ content_type: "image/png", file_name: "i.png" }),
        }),
      );
      await fetch(upload_url, { method: "PUT", body: await readFile(file) });
      return file_url as string;
    };
    const r = await body(
      await fetch(`${emu.url}${Q}/${I2V_02}`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({
          prompt: "from one picture to the other",
          image_url: await upload(start),
          end_image_url: await upload(end),
        }),
      }),
    );
    await untilCompleted(r.status_url);
    const out = await body(await fetch(r.response_url, { headers: auth }));
    const clip = join(dir, "clip.mp4");
    await writeFile(clip, Buffer.from(await (await fetch(out.video.url)).arrayBuffer()));
    const first = join(dir, "first.png");
    const last = join(dir, "last.png");
    await run("ffmpeg", ["-loglevel", "error", "-i", clip, "-frames:v", "1", first]);
    await run("ffmpeg", [
      ...["-loglevel", "error", "-sseof", "-0.3", "-i", clip, "-update", "1", last],
    ]);
    expect(await psnr(first, start)).toBeGreaterThanOrEqual(35);
    expect(await psnr(last, end)).toBeGreaterThanOrEqual(35);
    // The measure can fail: the first frame is not the end image.
    expect(await psnr(first, end)).toBeLessThan(20);
    // A first render (a cold cache on a fresh machine) beside other test streams takes a while.
  }, 90_000);
});
