import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "@hailuo/emulator";
import { startTestEmulator, makeTempDir, ffprobeFacts } from "@hailuo/test-utils";
import {
  createHailuoClient,
  downloadVideo,
  InputValidationError,
  livePrice,
  priceOf,
  UnknownEndpointError,
  uploadFile,
} from "./index.js";

// The family through the unmodified @fal-ai/client against a real emulator over HTTP.
const I2V_02 = "fal-ai/minimax/hailuo-02/standard/image-to-video";
const T2V_23 = "fal-ai/minimax/hailuo-2.3/standard/text-to-video";
const PRO_23 = "fal-ai/minimax/hailuo-2.3/pro/text-to-video";

describe("the family through the client", () => {
  let emu: Emulator;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let png: string;
  beforeAll(async () => {
    emu = await startTestEmulator({ render: "shared", progressLatencyMs: 20 });
    tmp = await makeTempDir();
    png = join(tmp.dir, "start.png");
    await promisify(execFile)("ffmpeg", [
      ...["-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=s=640x360", "-frames:v", "1", png],
    ]);
  });
  afterAll(async () => {
    await emu.close();
    await tmp.cleanup();
  });

  it("uploadFile sends a file through fal.storage.upload; the URL serves the same bytes", async () => {
    for (const emulatorRouting of ["host", "proxy"] as const) {
      const client = createHailuoClient({ emulatorUrl: emu.url, emulatorRouting });
      const up = await uploadFile(client, png);
      const bytes = await readFile(png);
      expect(up).toMatchObject({
        bytes: bytes.length,
        contentType: "image/png",
        sha256: createHash("sha256").update(bytes).digest("hex"),
      });
      expect(up.url).toMatch(/\/files\/emulator\/[0-9a-f]{32}\/start\.png$/);
      const served = Buffer.from(await (await fetch(up.url)).arrayBuffer());
      expect(served.equals(bytes)).toBe(true);
      // Bytes without a name: the type is read from the bytes themselves.
      expect((await uploadFile(client, new Uint8Array(bytes))).contentType).toBe("image/png");
    }
    expect(emu.stats().uploads).toMatchObject({ initiated: 4, completed: 4 });
    const client = createHailuoClient({ emulatorUrl: emu.url });
    const missing = await uploadFile(client, join(tmp.dir, "nope.png")).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(InputValidationError);
    expect((missing as Error).message).toContain("ENOENT");
  });

  it("submits to the endpoint the input names, billed at that endpoint's price", async () => {
    const client = createHailuoClient({ emulatorUrl: emu.url });
    const image = await uploadFile(client, png);
    const before = emu.stats();
    const i2v = await client.generate({ endpoint: I2V_02, prompt: "a hill", image_url: image.url });
    expect(i2v.handle.endpoint).toBe(I2V_02);
    const clip = join(tmp.dir, "i2v.mp4");
    await downloadVideo(i2v.output.video.url, clip, { expectedBytes: i2v.output.video.file_size });
    expect((await ffprobeFacts(clip)).frames).toBe(144);
    const t2v = await client.generate({ endpoint: T2V_23, prompt: "a hill", duration: 10 });
    expect(t2v.handle.endpoint).toBe(T2V_23);
    const stats = emu.stats();
    expect(stats.byEndpoint[I2V_02]?.billed.usd).toBe(priceOf(I2V_02, {}).usd);
    expect(stats.byEndpoint[T2V_23]?.billed).toEqual({ requests: 1, seconds: 10, usd: 0.56 });
    expect(stats.billed.usd - before.billed.usd).toBeCloseTo(0.27 + 0.56, 6);
    // A seed input is what it always was: no endpoint named, the seed's handle.
    const seed = await client.submit({ prompt: "a hill" });
    expect(seed.endpoint).toBe("fal-ai/minimax/hailuo-02/standard/text-to-video");
    await client.wait(seed);
  });

  it("refuses before sending: an unknown endpoint, a field the endpoint does not take", async () => {
    const client = createHailuoClient({ emulatorUrl: emu.url });
    const submits = emu.stats().submits.total;
    await expect(
      client.submit({ endpoint: "fal-ai/minimax/hailuo-03/text-to-video", prompt: "a" }),
    ).rejects.toBeInstanceOf(UnknownEndpointError);
    const wrong = await client
      .submit({
        endpoint: "fal-ai/minimax/hailuo-2.3/standard/image-to-video",
        prompt: "a",
        image_url: "https://v3.fal.media/files/a/start.png",
        end_image_url: "https://v3.fal.media/files/a/end.png",
      })
      .catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(InputValidationError);
    expect((wrong as InputValidationError).problems.map((p) => p.field)).toEqual(["end_image_url"]);
    expect(emu.stats().submits.total).toBe(submits);
  });

  it("asks fal's pricing API per endpoint, once each, in each endpoint's unit", async () => {
    const client = createHailuoClient({ emulatorUrl: emu.url });
    const calls = emu.stats().platformCalls;
    const seed = await livePrice(client, "fal-ai/minimax/hailuo-02/standard/text-to-video");
    const pro = await livePrice(client, PRO_23);
    expect(seed).toMatchObject({ usdPerSecond: 0.045, unit: "second", verified: true });
    expect(pro).toMatchObject({ unitPriceUsd: 0.49, unit: "video", verified: true });
    expect(await livePrice(client, PRO_23)).toBe(pro);
    expect(emu.stats().platformCalls - calls).toBe(2);
    // The quote prices clips through the record.
    expect(priceOf(PRO_23, {}, { unitPriceUsd: pro.unitPriceUsd }).usd).toBe(0.49);
  });
});
