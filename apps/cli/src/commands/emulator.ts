import { createEmulator, parseFaultFlag, type FaultRule } from "@hailuo/emulator";
import { UsageError } from "../exit-codes.js";
import { numberOption } from "../options.js";
import { untilAborted } from "@hailuo/shared";

/** Options of `hailuo emulator`. */
export interface EmulatorCommandOptions {
  port: string;
  host: string;
  latencyMs?: string;
  queueLatencyMs?: string;
  slots: string;
  seed: string;
  fault: string[];
  policyWord: string[];
  generationErrorRate?: string;
  apiKey?: string;
  render: string;
  price?: string;
  platformApi: string;
  cancelRunning: string;
  failureShape: string;
  publicUrl?: string;
}

/** Runs the fal emulator in the foreground until Ctrl-C. */
export async function emulatorCommand(
  opts: EmulatorCommandOptions,
  signal: AbortSignal,
): Promise<number> {
  let rules: FaultRule[];
  try {
    rules = opts.fault.map(parseFaultFlag);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (opts.render !== "animatic" && opts.render !== "shared")
    throw new UsageError(`--render must be animatic or shared`);
  const choice = <T extends string>(flag: string, value: string, allowed: readonly T[]): T => {
    if (!allowed.includes(value as T))
      throw new UsageError(
        `--${flag} must be ${allowed.join(" or ")}, got ${JSON.stringify(value)}`,
      );
    return value as T;
  };
  const emu = await createEmulator({
    // A busy port or an address this machine lacks is the user's to change (exit 2), not a failure.
    port: numberOption("port", opts.port),
    host: opts.host,
    slots: numberOption("slots", opts.slots, { min: 1 }),
    seed: numberOption("seed", opts.seed),
    progressLatencyMs: numberOption("latency-ms", opts.latencyMs),
    queueLatencyMs: numberOption("queue-latency-ms", opts.queueLatencyMs),
    apiKey: opts.apiKey,
    render: opts.render,
    publicUrl: opts.publicUrl,
    priceUsdPerSecond: numberOption("price", opts.price, { integer: false }),
    platformApi: choice("platform-api", opts.platformApi, ["on", "forbidden"] as const),
    cancelRunning: choice("cancel-running", opts.cancelRunning, ["signal", "immediate"] as const),
    failureShape: choice("failure-shape", opts.failureShape, ["fal", "status-error"] as const),
    faults: {
      rules,
      policyWords: opts.policyWord,
      generationErrorRate: numberOption("generation-error-rate", opts.generationErrorRate, {
        integer: false,
      }),
    },
    log: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
  }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "EADDRINUSE")
      throw new UsageError(
        `port ${opts.port} on ${opts.host} is already in use; pick another with --port`,
      );
    if (error.code === "EADDRNOTAVAIL" || error.code === "EACCES")
      throw new UsageError(
        `cannot listen on ${opts.host}:${opts.port} (${error.code}); check --host and --port`,
      );
    throw error;
  });
  process.stderr.write(
    `fal emulator listening on ${emu.url}\n  export FAL_EMULATOR_URL=${emu.url}\n  stats: ${emu.url}/__emulator/stats\n`,
  );
  process.stdout.write(`${emu.url}\n`);
  await untilAborted(signal);
  await emu.close();
  process.stderr.write(`emulator stopped; ${JSON.stringify(emu.stats().submits)}\n`);
  return 0;
}
