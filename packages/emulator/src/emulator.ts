import { generateKeyPairSync, randomUUID, type KeyObject } from "node:crypto";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HAILUO_ENDPOINT, PRICE_USD_PER_SECOND, endpointOf } from "@hailuo/endpoints";
import { FaultPlan, seededRandom, type FaultConfig } from "./faults.js";
import { ImageSource } from "./image-source.js";
import type { EmulatedInput } from "./input-rules.js";
import { resultBody } from "./queue-routes.js";
import { AnimaticRenderer } from "./render.js";
import { UploadStore } from "./storage-routes.js";
import { RequestStore, type Behaviour, type EmulatorClock } from "./request-store.js";
import { newStats, type EmulatorStats } from "./stats.js";
import {
  FAL_WEBHOOK_ATTEMPTS,
  FAL_WEBHOOK_FIRST_RETRY_MS,
  createWebhookSender,
} from "./webhooks.js";
import { createRouter } from "./router.js";
import { json } from "./wire.js";

/** fal's list price for this endpoint at 768p, USD per generated second (the spec's table). */
export const EMULATED_PRICE_USD_PER_SECOND = PRICE_USD_PER_SECOND["768p"];

/** Options of `createEmulator`. */
export interface EmulatorOptions {
  /** @default 0 (any free port) */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
  /** Base URL put into status/response/file URLs; by default the `Host` each client used. */
  publicUrl?: string;
  /** Requests IN_PROGRESS at once; the rest wait IN_QUEUE. @default 2 (a new fal account) */
  slots?: number;
  /** Least time a request spends IN_QUEUE. @default 0 */
  queueLatencyMs?: number;
  /** Least time a request spends IN_PROGRESS (the render may take longer). @default 1500 */
  progressLatencyMs?: number;
  /** Seed of the fault generator. @default 1 */
  seed?: number;
  faults?: FaultConfig;
  /** Only this key is accepted; otherwise any non-empty one. */
  apiKey?: string;
  /** How failures and bad input look. @default "fal" (see Behaviour) */
  failureShape?: Behaviour["failureShape"];
  /** What a cancel does to a running request. @default "signal" (it may still complete and bill) */
  cancelRunning?: Behaviour["cancelRunning"];
  /** The account's price of the seed endpoint, served by the pricing API and billed. @default 0.045 */
  priceUsdPerSecond?: number;
  /**
   * The account's unit price of other endpoints, in each record's unit (per second or per video);
   * the record's whole table is scaled by it, as `priceOf` does. @default each record's list price
   */
  unitPricesUsd?: Record<string, number>;
  /** `forbidden`: the Platform APIs answer 403 (a key without their scope). @default "on" */
  platformApi?: "on" | "forbidden";
  /**
   * `animatic` renders a card per distinct input at the endpoint's size; `shared` renders one
   * 320×180 card per duration and serves it to everyone, and image-to-video clips at 180 px high
   * (their first and last frames still the images): for tests and benchmarks that must pay neither
   * the render nor, downstream, the media stage's work on full-size frames. @default "animatic"
   */
  render?: "animatic" | "shared";
  /**
   * Renders every clip this many lines high (the width by its aspect) instead of the resolution's
   * height: for tests that need a clip of their own per input but not full-size frames.
   * @default the resolution's (768 for the seed); 180 for `shared`
   */
  clipHeight?: number;
  /** Where rendered clips are cached. @default <tmpdir>/hailuo-emulator-cache */
  cacheDir?: string;
  /** SSE keep-alive comment interval. @default 15000 */
  keepaliveMs?: number;
  /** Webhook delivery attempts. @default 10 (fal's) */
  webhookAttempts?: number;
  /** First webhook retry delay, doubled each time. @default 15000 (10 attempts over ~2 h, like fal) */
  webhookRetryDelayMs?: number;
  /** Time for the request store (tests). @default real time */
  clock?: EmulatorClock;
  /** Called with one line per notable event (for `hailuo emulator` output). */
  log?: (line: string) => void;
}

/** A running emulator. */
export interface Emulator {
  /** Base URL, e.g. `http://127.0.0.1:8787`; set it as FAL_EMULATOR_URL. */
  url: string;
  port: number;
  /** A copy of the counters. */
  stats(): EmulatorStats;
  /** Replaces the fault configuration at run time. */
  setFaults(faults: FaultConfig): void;
  /**
   * Changes the account's price (pricing API and bill) at run time: of the seed, or of the
   * endpoint named, in its record's unit.
   */
  setPrice(unitPriceUsd: number, endpointId?: string): void;
  /** Stops the server, timers and open streams. */
  close(): Promise<void>;
}

/**
 * Starts a fal-compatible emulator of the Hailuo queue on loopback: submit, status (polling and
 * SSE), result, cancel, sync run, fal's Platform APIs (pricing, requests by endpoint), webhooks
 * signed with its own ED25519 key, real MP4 clips, seedable fault injection and counters at
 * `/__emulator/stats`. By default it answers as fal does where money is decided (see Behaviour).
 */
export async function createEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const log = options.log ?? (() => {});
  const faults = new FaultPlan(options.faults ?? {}, seededRandom(options.seed ?? 1));
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const jwks = {
    keys: [{ ...publicKey.export({ format: "jwk" }), kid: "emulator-1", use: "sig", alg: "EdDSA" }],
  };
  const stats = newStats();
  const behaviour: Behaviour = {
    failureShape: options.failureShape ?? "fal",
    cancelRunning: options.cancelRunning ?? "signal",
  };
  const prices = new Map(Object.entries(options.unitPricesUsd ?? {}));
  if (options.priceUsdPerSecond !== undefined || !prices.has(HAILUO_ENDPOINT))
    prices.set(HAILUO_ENDPOINT, options.priceUsdPerSecond ?? EMULATED_PRICE_USD_PER_SECOND);
  const unitPriceUsd = (id: string): number => {
    const p = endpointOf(id).price;
    return prices.get(id) ?? (p.unit === "second" ? p.usdPerSecond : p.usdPerVideo);
  };
  const cacheDir = options.cacheDir ?? join(tmpdir(), "hailuo-emulator-cache");
  // Uploads belong to this emulator alone (removed on close); fetched images are shared by content.
  const uploads = new UploadStore(join(cacheDir, "uploads", randomUUID()));
  const images = new ImageSource(join(cacheDir, "images"), uploads);
  const renderer = new AnimaticRenderer(cacheDir);
  const render = createRender(renderer, images, options.render ?? "animatic", options.clipHeight);
  const streams = new Set<ServerResponse>();
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;
  let boundUrl = "";
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (!closed) fn();
    }, ms);
    timers.add(t);
  };
  const sendWebhook = createWebhookSender({
    privateKey: privateKey as KeyObject,
    stats,
    attempts: options.webhookAttempts ?? FAL_WEBHOOK_ATTEMPTS,
    firstRetryMs: options.webhookRetryDelayMs ?? FAL_WEBHOOK_FIRST_RETRY_MS,
    later,
    payloadOf: (r) => resultBody(r, options.publicUrl ?? boundUrl),
    log,
  });
  const store = new RequestStore({
    slots: options.slots ?? 2,
    queueLatencyMs: options.queueLatencyMs ?? 0,
    progressLatencyMs: options.progressLatencyMs ?? 1500,
    behaviour,
    faults,
    stats,
    unitPriceUsd,
    render,
    onComplete: (r) => r.webhookUrl && sendWebhook(r),
    log,
    clock: options.clock,
  });

  const route = createRouter({
    store,
    faults,
    stats,
    behaviour,
    streams,
    jwks,
    unitPriceUsd,
    uploads,
    options,
  });
  const server = createServer((req, res) => {
    route(req, res).catch((error: Error) => {
      if (!res.headersSent) json(res, 500, { detail: `emulator error: ${error.message}` });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  boundUrl = `http://${address.includes(":") ? `[${address}]` : address}:${port}`;

  return {
    url: boundUrl,
    port,
    stats: () => structuredClone(stats),
    setFaults: (f) => faults.set(f),
    setPrice: (usd, endpointId = HAILUO_ENDPOINT) => {
      endpointOf(endpointId);
      prices.set(endpointId, usd);
    },
    async close() {
      closed = true;
      store.close();
      timers.forEach(clearTimeout);
      timers.clear();
      streams.forEach((s) => s.end());
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await uploads.close();
    },
  };
}

/** Clip sizes by resolution, 16:9 as fal's clips of a 16:9 image (an image's clip follows its aspect). */
const HEIGHTS = { "512P": 512, "768P": 768, "1080P": 1080 } as const;

/** The frame height of `shared` clips (320×180 at 16:9). */
const SHARED_HEIGHT = 180;

/** A clip's frame size: the resolution's height, or `height` when the emulator was given one. */
function clipSize(
  resolution: keyof typeof HEIGHTS,
  aspect = 1366 / 768,
  height: number = HEIGHTS[resolution],
): { width: number; height: number } {
  // Even sides (yuv420p), the seed's 1366×768 at 16:9.
  const width = Math.round((height * aspect) / 2) * 2;
  return {
    width: height === 768 && Math.abs(aspect - 16 / 9) < 0.01 ? 1366 : width,
    height,
  };
}

/**
 * How a request becomes a clip: text-to-video renders the prompt card (the seed exactly as it
 * always has, so caches keep their clips), image-to-video starts on its image and ends on its end
 * image. Hailuo takes no seed: the same input generates a different video each time (a dice
 * roll), so the n-th request for one input gets the n-th look (other colours, "roll n" drawn on it).
 */
function createRender(
  renderer: AnimaticRenderer,
  images: ImageSource,
  mode: "animatic" | "shared",
  clipHeight = mode === "shared" ? SHARED_HEIGHT : undefined,
): (input: EmulatedInput, endpointId: string) => Promise<string> {
  const rolls = new Map<string, number>();
  return async (input, endpointId) => {
    const record = endpointOf(endpointId);
    const seed = endpointId === HAILUO_ENDPOINT;
    const name = `${record.model}${record.tier === "pro" ? " pro" : ""}`;
    const durationS = Number(input.duration);
    // `shared`: one small card per duration for every text-to-video endpoint, whatever its
    // resolution.
    if (record.kind === "t2v" && mode === "shared")
      return renderer.render({
        prompt: `Emulated clip (${input.duration}s)`,
        durationS,
        ...clipSize("768P", undefined, clipHeight),
      });
    const key = JSON.stringify(
      seed
        ? [input.prompt, input.duration, input.prompt_optimizer]
        : [
            endpointId,
            input.prompt,
            input.duration,
            input.prompt_optimizer,
            input.resolution,
            input.image_url,
            input.end_image_url,
          ],
    );
    const n = (rolls.get(key) ?? 0) + 1;
    rolls.set(key, n);
    const roll = n > 1 ? ` · roll ${n}` : "";
    if (record.kind === "t2v")
      return renderer.render({
        prompt: input.prompt,
        durationS,
        label: seed
          ? `hailuo-02 emulator · ${input.duration}s${roll}`
          : `${name} emulator · ${input.duration}s${roll}`,
        variant: n,
        ...clipSize(input.resolution ?? "768P", undefined, clipHeight),
      });
    const start = await images.get(input.image_url!, "image_url");
    const end = input.end_image_url
      ? await images.get(input.end_image_url, "end_image_url")
      : undefined;
    return renderer.renderImageClip({
      prompt: input.prompt,
      durationS,
      ...clipSize(input.resolution ?? "768P", start.width / start.height, clipHeight),
      startImage: start.path,
      endImage: end?.path,
      label: `${name} image-to-video emulator · ${input.duration}s${roll}`,
      variant: n,
    });
  };
}
