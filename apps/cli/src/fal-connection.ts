import {
  HAILUO_ENDPOINT,
  PRICE_USD_PER_SECOND,
  createHailuoClient,
  endpointOf,
  livePrice,
  type HailuoClient,
  type HttpRetryInfo,
  type LivePrice,
} from "@hailuo/core";
import type { Emulator, EmulatorOptions } from "@hailuo/emulator";
import type { Manifest } from "@hailuo/manifest";
import type { Backend } from "@hailuo/runner";

/** A client plus, when nothing else was configured, the emulator started for it. */
export interface FalConnection {
  client: HailuoClient;
  emulator?: Emulator;
  /** Where requests go, for one line of output (never the key). */
  target: string;
  /** Where requests go, as recorded in a run folder. */
  backend: Backend;
  close(): Promise<void>;
}

/** The backend the environment names (FAL_EMULATOR_URL, else FAL_KEY), or undefined when it names none. */
export function backendFromEnv(): Backend | undefined {
  if (process.env.FAL_EMULATOR_URL) return { kind: "emulator", url: process.env.FAL_EMULATOR_URL };
  if (process.env.FAL_KEY || (process.env.FAL_KEY_ID && process.env.FAL_KEY_SECRET))
    return { kind: "fal" };
  return undefined;
}

/**
 * Connects to fal (FAL_KEY), to an emulator (FAL_EMULATOR_URL), or, with neither set, starts
 * the emulator in-process: the embedded default that lets every command run on a fresh machine.
 */
export async function connectFal(options: {
  say: (line: string) => void;
  emulatorOptions?: EmulatorOptions;
  onHttpRetry?: (info: HttpRetryInfo) => void;
}): Promise<FalConnection> {
  const envUrl = process.env.FAL_EMULATOR_URL;
  if (envUrl || process.env.FAL_KEY || (process.env.FAL_KEY_ID && process.env.FAL_KEY_SECRET)) {
    const client = createHailuoClient({ onHttpRetry: options.onHttpRetry });
    return {
      client,
      backend: backendFromEnv()!,
      target: envUrl ? `emulator at ${envUrl}` : "fal.ai",
      close: async () => {},
    };
  }
  const { createEmulator } = await import("@hailuo/emulator");
  const emulator = await createEmulator(options.emulatorOptions);
  options.say(
    `No FAL_KEY or FAL_EMULATOR_URL set: using the built-in fal emulator at ${emulator.url} (animatic clips, nothing is billed).`,
  );
  const client = createHailuoClient({
    emulatorUrl: emulator.url,
    onHttpRetry: options.onHttpRetry,
  });
  return {
    client,
    emulator,
    backend: { kind: "builtin-emulator" },
    target: `built-in emulator at ${emulator.url}`,
    close: () => emulator.close(),
  };
}

/**
 * The price estimates and budgets use: the account's live price from fal's pricing API (or the
 * configured emulator's), else the built-in table, saying which and why.
 */
export async function priceFor(client?: HailuoClient, given?: number): Promise<LivePrice> {
  if (given !== undefined) return { usdPerSecond: given, source: "--price", verified: true };
  if (client) return livePrice(client, HAILUO_ENDPOINT);
  if (backendFromEnv()) return livePrice(createHailuoClient(), HAILUO_ENDPOINT);
  // The built-in emulator bills at the list price: nothing else to confirm.
  return {
    usdPerSecond: PRICE_USD_PER_SECOND["768p"],
    source: "built-in price table",
    verified: true,
    reason: "no FAL_KEY or FAL_EMULATOR_URL set: the built-in emulator's price",
  };
}

/**
 * The prices of the endpoints besides the seed that `manifest` uses (the seed's is `priceFor`'s),
 * by id: each asked of fal's pricing API (or the configured emulator's), or the list price the
 * built-in emulator bills when neither is set.
 */
export async function endpointPricesFor(
  manifest: Manifest,
  client?: HailuoClient,
): Promise<[string, LivePrice][]> {
  const ids = [...new Set(manifest.scenes.map((s) => s.endpoint ?? HAILUO_ENDPOINT))].filter(
    (id) => id !== HAILUO_ENDPOINT,
  );
  const asked = client ?? (backendFromEnv() ? createHailuoClient() : undefined);
  return Promise.all(
    ids.map(async (id): Promise<[string, LivePrice]> => {
      if (asked) return [id, await livePrice(asked, id)];
      const p = endpointOf(id).price;
      const unitPriceUsd = p.unit === "second" ? p.usdPerSecond : p.usdPerVideo;
      return [
        id,
        {
          usdPerSecond: p.unit === "second" ? p.usdPerSecond : unitPriceUsd / 6,
          unitPriceUsd,
          unit: p.unit,
          source: "built-in price table",
          verified: true,
          reason: "no FAL_KEY or FAL_EMULATOR_URL set: the built-in emulator's price",
        },
      ];
    }),
  );
}

/** The unit prices `planRun` and `previewRun` take for endpoints besides the seed. */
export function unitPricesOf(prices: [string, LivePrice][]): Record<string, number> {
  return Object.fromEntries(prices.map(([id, q]) => [id, q.unitPriceUsd ?? q.usdPerSecond]));
}

/** One line naming an endpoint's price, in its own unit. */
export function describeEndpointPrice(id: string, p: LivePrice): string {
  const from = p.source === "--price" ? "given" : `from the ${p.source}`;
  return `price of ${id}: $${p.unitPriceUsd ?? p.usdPerSecond}/${p.unit ?? "second"} ${from}${p.verified ? "" : ", not verified"}`;
}

/** One line naming the price used, for people. */
export function describePrice(p: LivePrice): string {
  const from = p.source === "--price" ? "given with --price" : `from the ${p.source}`;
  return `price: $${p.usdPerSecond}/s ${from}${p.reason ? ` (${p.reason})` : ""}${p.verified ? "" : ", not verified"}`;
}
