import { resolve } from "node:path";
import { runMediaStage } from "@hailuo/publish";
import { readRunManifest, runManifest } from "@hailuo/runner";
import { startReviewServer } from "@hailuo/review";
import { connectFal, priceFor } from "../fal-connection.js";
import { numberOption } from "../options.js";
import { pickTake, quoteRerollNow } from "./takes.js";

/** `hailuo review <run-dir> [--port N] [--host ADDR]`: a local page to watch a run, compare and pick takes, re-roll and assemble. */
export async function reviewCommand(
  runDir: string,
  opts: { port?: string; host?: string },
  signal: AbortSignal,
): Promise<number> {
  const dir = resolve(runDir);
  await readRunManifest(dir); // not a run folder: say so before starting a server
  const price = await priceFor();
  // One connection for the page's whole session: its re-rolls run here, through the same runner
  // and journal as `hailuo reroll` (no child process); its assembles through the media stage.
  const conn = await connectFal({ say: (line) => process.stderr.write(`${line}\n`) });
  const server = await startReviewServer({
    runDir: dir,
    host: opts.host,
    port: numberOption("port", opts.port),
    usdPerSecond: price.usdPerSecond,
    actions: {
      pick: (scene, take) => pickTake(dir, scene, take),
      quote: async (scene, takes, prompt) => ({
        usd: (await quoteRerollNow(dir, scene, takes, prompt)).usd,
      }),
      // The page asked and showed the cost before this click: that is the confirmation.
      reroll: async (scene, takes, prompt) => {
        const quote = await quoteRerollNow(dir, scene, takes, prompt);
        const keys = new Set(quote.keys);
        const result = await runManifest({
          manifest: quote.manifest,
          runDir: dir,
          client: conn.client,
          backend: conn.backend,
          priceUsdPerSecond: quote.price,
          only: (item) => keys.has(item.key),
          signal,
        });
        const failed = result.report.items.filter((i) => keys.has(i.key) && i.error);
        if (result.exitCode !== 0)
          throw new Error(
            failed.map((i) => `${i.scene}#${i.take}: ${i.error}`).join("; ") ||
              `the re-roll stopped (exit ${result.exitCode})`,
          );
      },
      assemble: async () => {
        await runMediaStage(dir, await readRunManifest(dir), { assemble: true, signal });
      },
    },
  });
  // The token goes to stdout only, the address to open; stderr (often kept in logs) shows the page without it.
  const bare = new URL(server.url);
  bare.search = "";
  process.stderr.write(
    `review page for ${runDir}: ${bare.href} (open the address printed on stdout: its token lets the page read the run, pick, re-roll and assemble)\n(bound to ${opts.host ?? "127.0.0.1"}; Ctrl-C stops the server)\n`,
  );
  process.stdout.write(`${server.url}\n`);
  await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
  await server.close();
  await conn.close();
  return 0;
}
