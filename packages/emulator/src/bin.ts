#!/usr/bin/env node
// `hailuo-emulator`: the emulator in the foreground for anyone testing their own fal code offline,
// without the whole CLI. Flags mirror `hailuo emulator`'s common ones; node:util parses them.
import { parseArgs } from "node:util";
import { createEmulator } from "./emulator.js";
import { parseFaultFlag } from "./faults.js";

const HELP = `Usage: hailuo-emulator [options]

fal.ai on loopback for the MiniMax Hailuo family (fal-ai/minimax/hailuo-02/…, hailuo-2.3/…,
hailuo-2.3-fast/…): queue, platform, storage and webhook APIs, real MP4 clips (image-to-video
clips start on their image). Point a fal client at <url>/__host/<fal host>/…

Options:
  --port <n>             port (0: any free one)                    default 8787
  --host <addr>          address to bind                           default 127.0.0.1
  --latency-ms <n>       least time a request spends IN_PROGRESS   default 1500
  --queue-latency-ms <n> least time a request spends IN_QUEUE      default 0
  --slots <n>            requests IN_PROGRESS at once              default 2
  --seed <n>             seed of the fault generator               default 1
  --fault <r:kind:amt>   inject a fault, e.g. submit:503:0.1 (repeatable)
  --policy-word <word>   prompts containing it fail content policy (repeatable)
  --api-key <key>        accept only this key
  --price <usd>          the seed's price per second               default 0.045
  -h, --help             this text

Prints its URL on stdout; stops on Ctrl-C.
`;

function fail(message: string): never {
  process.stderr.write(`hailuo-emulator: ${message}\n(see hailuo-emulator --help)\n`);
  process.exit(2);
}

function num(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0)
    fail(`--${flag} must be a number ≥ 0, got ${JSON.stringify(value)}`);
  return n;
}

let args;
try {
  args = parseArgs({
    options: {
      port: { type: "string", default: "8787" },
      host: { type: "string", default: "127.0.0.1" },
      "latency-ms": { type: "string" },
      "queue-latency-ms": { type: "string" },
      slots: { type: "string" },
      seed: { type: "string" },
      fault: { type: "string", multiple: true, default: [] },
      "policy-word": { type: "string", multiple: true, default: [] },
      "api-key": { type: "string" },
      price: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  }).values;
} catch (error) {
  fail((error as Error).message);
}
if (args.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
let rules;
try {
  rules = args.fault.map(parseFaultFlag);
} catch (error) {
  fail((error as Error).message);
}
const emu = await createEmulator({
  port: num("port", args.port),
  host: args.host,
  progressLatencyMs: num("latency-ms", args["latency-ms"]),
  queueLatencyMs: num("queue-latency-ms", args["queue-latency-ms"]),
  slots: num("slots", args.slots),
  seed: num("seed", args.seed),
  apiKey: args["api-key"],
  priceUsdPerSecond: num("price", args.price),
  faults: { rules, policyWords: args["policy-word"] },
  log: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
}).catch((error: NodeJS.ErrnoException) => {
  if (error.code === "EADDRINUSE")
    fail(`port ${args.port} on ${args.host} is already in use; pick another with --port`);
  throw error;
});
process.stderr.write(
  `fal emulator listening on ${emu.url}\n  stats: ${emu.url}/__emulator/stats\n`,
);
process.stdout.write(`${emu.url}\n`);
const stop = () => {
  void emu.close().then(() => {
    process.stderr.write(`emulator stopped; ${JSON.stringify(emu.stats().submits)}\n`);
    process.exit(0);
  });
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
