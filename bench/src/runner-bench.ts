// Runs 200 scenes through the runner against the emulator and compares with a baseline measured
// in the same run: fal's own `subscribe` (default 500 ms polling) under the same p-limit.
// Prints ratios, not absolute verdicts: machines are noisy.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFalClient } from "@fal-ai/client";
import { createHailuoClient, HAILUO_ENDPOINT } from "@hailuo/core";
import { createEmulator } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import { runManifest } from "@hailuo/runner";
import pLimit from "p-limit";

const SCENES = Number(process.env.BENCH_SCENES ?? 200);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 2000);

let peakRss = 0;
let peakHeap = 0;
const sampler = setInterval(() => {
  const m = process.memoryUsage();
  peakRss = Math.max(peakRss, m.rss);
  peakHeap = Math.max(peakHeap, m.heapUsed);
}, 50);

const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
// fal runs C generations at once: N clips take ⌈N/C⌉ rounds of one generation each.
const ideal = Math.ceil(SCENES / CONCURRENCY) * LATENCY_MS;

async function withEmulator<T>(fn: (url: string) => Promise<T>): Promise<{
  value: T;
  stats: Awaited<ReturnType<typeof createEmulator>> extends { stats(): infer S } ? S : never;
}> {
  const emu = await createEmulator({
    slots: CONCURRENCY,
    progressLatencyMs: LATENCY_MS,
    render: "shared",
    cacheDir: join(tmpdir(), "hailuo-bench-cache"),
  });
  try {
    const value = await fn(emu.url);
    return { value, stats: emu.stats() };
  } finally {
    await emu.close();
  }
}

// Warm the shared clip once so neither measurement pays the one-off render.
await withEmulator(async (url) =>
  createHailuoClient({ emulatorUrl: url }).generate({ prompt: "warm-up", duration: "6" }),
);

// Baseline: the fal client's subscribe with its default polling, no journal, no download.
const baseline = await withEmulator(async (url) => {
  const fal = createFalClient({
    credentials: "bench",
    requestMiddleware: async (req) => {
      const u = new URL(req.url);
      return { ...req, url: `${url}/__host/${u.host}${u.pathname}${u.search}` };
    },
  });
  const limit = pLimit(CONCURRENCY);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: SCENES }, (_, i) =>
      limit(() =>
        fal.subscribe(HAILUO_ENDPOINT, { input: { prompt: `baseline scene ${i}`, duration: "6" } }),
      ),
    ),
  );
  return performance.now() - t0;
});

// Ours: the full runner (journal, SSE waiting, download, ffprobe verification, reports).
const dir = await mkdtemp(join(tmpdir(), "hailuo-bench-run-"));
peakRss = 0;
peakHeap = 0;
const ours = await withEmulator(async (url) => {
  const manifest = parseManifest(
    `name: bench\nscenes:\n${Array.from({ length: SCENES }, (_, i) => `  - prompt: bench scene ${i}\n`).join("")}`,
    { file: "bench.yaml" },
  );
  const t0 = performance.now();
  const result = await runManifest({
    manifest,
    runDir: dir,
    client: createHailuoClient({ emulatorUrl: url }),
    concurrency: CONCURRENCY,
  });
  if (result.report.totals.done !== SCENES)
    throw new Error(`only ${result.report.totals.done} of ${SCENES} clips finished`);
  return performance.now() - t0;
});
clearInterval(sampler);
await rm(dir, { recursive: true, force: true });

const calls = (s: typeof ours.stats) => (s.statusCalls + s.streamCalls) / SCENES;
console.log(
  `runner bench: ${SCENES} scenes, concurrency ${CONCURRENCY}, ${LATENCY_MS} ms per generation (ideal ${(ideal / 1000).toFixed(1)} s)`,
);
console.log(
  `  runner   wall ${(ours.value / 1000).toFixed(2)} s = ${(ours.value / ideal).toFixed(2)}× ideal; status calls per clip ${calls(ours.stats).toFixed(2)} (${ours.stats.streamCalls} streams, ${ours.stats.statusCalls} polls); submits ${ours.stats.submits.total}`,
);
console.log(
  `  baseline wall ${(baseline.value / 1000).toFixed(2)} s = ${(baseline.value / ideal).toFixed(2)}× ideal; status calls per clip ${calls(baseline.stats).toFixed(2)} (fal subscribe, 500 ms polling, no download)`,
);
// Three decimals: the two differ by tenths of a second in fifty.
console.log(
  `  ratios   wall runner/baseline ${(ours.value / baseline.value).toFixed(3)}; status calls runner/baseline ${(calls(ours.stats) / calls(baseline.stats)).toFixed(2)}`,
);
console.log(
  `  memory   peak RSS ${mib(peakRss)}, peak heap ${mib(peakHeap)} during the runner's run`,
);
