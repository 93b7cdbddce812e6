// A user's own script: generate two clips in parallel with @hailuo/core and save them.
// With FAL_KEY set it talks to fal.ai (and bills); with FAL_EMULATOR_URL, to an emulator
// (`pnpm hailuo emulator` in this repository). It depends on @hailuo/core alone.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { createHailuoClient, downloadVideo, estimateCost, HailuoError } from "@hailuo/core";

const outDir = process.argv[2] ?? "library-example-out";
const prompts = [
  "A hummingbird hovers over a red flower, macro shot [Push in]",
  "Neon signs reflected in puddles on a rainy Tokyo street at night",
];

if (!process.env.FAL_KEY && !process.env.FAL_EMULATOR_URL) {
  console.error(
    "set FAL_KEY (fal.ai, billed) or FAL_EMULATOR_URL (e.g. after `pnpm hailuo emulator --port 8787`: http://127.0.0.1:8787)",
  );
  process.exit(2);
}
const client = createHailuoClient();
await mkdir(outDir, { recursive: true });
{
  const total = prompts.reduce((sum) => sum + estimateCost({ duration: "6" }).usd, 0);
  console.log(
    `generating ${prompts.length} clips for $${total.toFixed(2)}${client.usingEmulator ? " (emulator: nothing billed)" : ""}`,
  );
  const results = await Promise.allSettled(
    prompts.map(async (prompt, i) => {
      const { handle, output } = await client.generate(
        { prompt, duration: "6" },
        {
          onEnqueue: (h) => console.log(`clip ${i + 1}: queued as ${h.requestId}`),
        },
      );
      const saved = await downloadVideo(output.video.url, join(outDir, `clip-${i + 1}.mp4`), {
        expectedBytes: output.video.file_size,
      });
      console.log(
        `clip ${i + 1}: ${saved.path} (${saved.bytes} bytes, request ${handle.requestId})`,
      );
      return saved;
    }),
  );
  for (const r of results) {
    if (r.status === "rejected") {
      const e = r.reason;
      console.error(
        e instanceof HailuoError
          ? `failed [${e.code}, retryable: ${e.retryable}]: ${e.message}`
          : e,
      );
      process.exitCode = 1;
    }
  }
}
