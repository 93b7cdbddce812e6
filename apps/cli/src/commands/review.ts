import { runMediaStage } from "@hailuo/publish";
import { mustBeRunFolder, readRunManifest, runManifest } from "@hailuo/runner";
import { startReviewServer } from "@hailuo/review";
import { connectFal, priceFor } from "../fal-connection.js";
import { numberOption } from "../options.js";
import { openRunAt, type RunAtOptions } from "../run-at.js";
import { pickTake, quoteRerollNow } from "./takes.js";
import { untilAborted } from "@hailuo/shared";

/**
 * `hailuo review <run> [--port N] [--host ADDR]`: a local page to watch a run, compare and pick
 * takes, re-roll and assemble. A bucket run is mirrored into a scratch folder the page reads
 * (records followed from Redis, clips brought down once); its film and posters go back up.
 */
export async function reviewCommand(
  address: string,
  opts: { port?: string; host?: string } & RunAtOptions,
  signal: AbortSignal,
): Promise<number> {
  const { store, run, close } = await openRunAt(address, opts);
  try {
    // Not a run: say so before starting a server.
    await mustBeRunFolder(store);
    const dir = store.dir;
    const mirror =
      store.kind === "local" ? undefined : (await import("@hailuo/queue")).createRunMirror(store);
    // Pages made in a bucket run's scratch folder name the run by its address.
    const runAddress = mirror && store.url;
    await mirror?.pull();
    const price = await priceFor();
    // One connection for the page's whole session: its re-rolls run here, through the same runner
    // and journal as `hailuo reroll` (no child process); its assembles through the media stage.
    const conn = await connectFal({ say: (line) => process.stderr.write(`${line}\n`) });
    // Workers or another process may add records: followed as the page polls its folder, one
    // pull at a time (a slow one is not piled on).
    let following: Promise<void> | undefined;
    const follow =
      mirror &&
      setInterval(() => {
        following ??= mirror
          .pull()
          .catch(() => {})
          .finally(() => (following = undefined));
      }, 1000);
    try {
      const server = await startReviewServer({
        runDir: dir,
        runAddress,
        host: opts.host,
        port: numberOption("port", opts.port),
        usdPerSecond: price.usdPerSecond,
        actions: {
          pick: async (scene, take) => {
            await pickTake(run, scene, take);
            await mirror?.pull();
          },
          quote: async (scene, takes, prompt) => ({
            usd: (await quoteRerollNow(run, scene, takes, prompt)).usd,
          }),
          // The page asked and showed the cost before this click: that is the confirmation.
          reroll: async (scene, takes, prompt) => {
            const quote = await quoteRerollNow(run, scene, takes, prompt);
            const keys = new Set(quote.keys);
            const result = await runManifest({
              manifest: quote.manifest,
              runDir: run,
              client: conn.client,
              backend: conn.backend,
              priceUsdPerSecond: quote.price,
              only: (item) => keys.has(item.key),
              signal,
            });
            await mirror?.pull();
            const failed = result.report.items.filter((i) => keys.has(i.key) && i.error);
            if (result.exitCode !== 0)
              throw new Error(
                failed.map((i) => `${i.scene}#${i.take}: ${i.error}`).join("; ") ||
                  `the re-roll stopped (exit ${result.exitCode})`,
              );
          },
          assemble: async () => {
            await mirror?.pull();
            await runMediaStage(dir, await readRunManifest(dir), {
              assemble: true,
              signal,
              runAddress,
            });
            await mirror?.push();
          },
        },
      });
      // The token goes to stdout only, the address to open; stderr (often kept in logs) shows the
      // page without it.
      const bare = new URL(server.url);
      bare.search = "";
      process.stderr.write(
        `review page for ${address}: ${bare.href} (open the address printed on stdout: its token lets the page read the run, pick, re-roll and assemble)\n(bound to ${opts.host ?? "127.0.0.1"}; Ctrl-C stops the server)\n`,
      );
      process.stdout.write(`${server.url}\n`);
      await untilAborted(signal);
      await server.close();
    } finally {
      if (follow) clearInterval(follow);
      // The scratch folder goes once this returns: no pull may still be writing into it.
      await following;
      await conn.close();
    }
    return 0;
  } finally {
    await close();
  }
}
