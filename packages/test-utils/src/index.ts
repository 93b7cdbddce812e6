import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createEmulator, type Emulator, type EmulatorOptions } from "@hailuo/emulator";

/** Clips rendered by tests are shared across test files so identical prompts render once. */
export const TEST_CACHE_DIR = join(tmpdir(), "hailuo-test-emulator-cache");

/**
 * Starts an emulator on a free loopback port with short latencies suited to tests, its clips 180
 * lines high (a clip of its own per input still, without full-size frames to render, join and
 * decode: the emulator's own tests check the real sizes).
 */
export function startTestEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  return createEmulator({
    progressLatencyMs: 200,
    clipHeight: 180,
    cacheDir: TEST_CACHE_DIR,
    webhookRetryDelayMs: 50,
    ...options,
  });
}

/** A fresh temp folder; remove it with the returned `cleanup`. */
export async function makeTempDir(
  prefix = "hailuo-test-",
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** What ffprobe says of a video file's first video stream and container. */
export interface ProbeFacts {
  width: number;
  height: number;
  frames: number;
  fps: string;
  codec: string;
  pixFmt: string;
  durationS: number;
  hasAudio: boolean;
}

/** Runs the real ffprobe on a file (independent of the media package, so tests can check it too). */
export async function ffprobeFacts(file: string): Promise<ProbeFacts> {
  const { stdout } = await promisify(execFile)(process.env.FFPROBE_PATH || "ffprobe", [
    "-v",
    "error",
    "-count_packets",
    "-show_entries",
    "stream=codec_type,width,height,nb_read_packets,r_frame_rate,codec_name,pix_fmt:format=duration",
    "-of",
    "json",
    file,
  ]);
  const data = JSON.parse(stdout) as {
    streams: Record<string, string | number>[];
    format: { duration: string };
  };
  const v = data.streams.find((s) => s.codec_type === "video")!;
  return {
    width: Number(v.width),
    height: Number(v.height),
    frames: Number(v.nb_read_packets),
    fps: String(v.r_frame_rate),
    codec: String(v.codec_name),
    pixFmt: String(v.pix_fmt),
    durationS: Number(data.format.duration),
    hasAudio: data.streams.some((s) => s.codec_type === "audio"),
  };
}

/** Resolves when `predicate` holds, polling every 20 ms; rejects after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export { startFaultyGateway, type FaultyGateway, type GatewayFault } from "./gateway.js";

// Content hashes of files this process saw decode cleanly (see decodeErrors).
const decodedClean = new Set<string>();

/**
 * Decodes a video completely with ffmpeg; resolves to what ffmpeg printed at `-v error` (empty
 * when clean). A file whose bytes are identical (SHA-256) to one this process already saw decode
 * cleanly is clean without a second decode: a decode is a function of the bytes, and the
 * emulator's "shared" clips are byte-identical, so a money test would otherwise decode the same
 * bytes dozens of times. Any changed byte (a cut, rot, another clip) means a full decode.
 */
export async function decodeErrors(file: string): Promise<string> {
  const ffmpeg = process.env.FFMPEG_PATH || "ffmpeg";
  const key = await contentKey(ffmpeg, file);
  if (key && decodedClean.has(key)) return "";
  const errors = await ffmpegDecodeErrors(ffmpeg, file);
  // Remembered only if the bytes did not change while ffmpeg read them.
  if (key && errors === "" && (await contentKey(ffmpeg, file)) === key) decodedClean.add(key);
  return errors;
}

async function contentKey(ffmpeg: string, file: string): Promise<string | undefined> {
  const bytes = await readFile(file).catch(() => undefined);
  return bytes && `${ffmpeg}\0${createHash("sha256").update(bytes).digest("hex")}`;
}

async function ffmpegDecodeErrors(ffmpeg: string, file: string): Promise<string> {
  const { stderr } = await promisify(execFile)(ffmpeg, [
    "-v",
    "error",
    "-i",
    file,
    "-f",
    "null",
    "-",
  ]).catch((e: { stderr?: string; message: string }) => ({ stderr: e.stderr || e.message }));
  return stderr.trim();
}
export { heldClock, holdableClock, type HoldableClock } from "./holdable-clock.js";
export { startTestS3, type TestS3Server } from "./s3-server.js";
export { startTestRedis, type TestRedis } from "./redis-server.js";
export { greyPng } from "./png.js";
