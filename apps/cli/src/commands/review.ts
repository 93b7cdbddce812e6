import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { readRunManifest } from "@hailuo/runner";
import { startReviewServer } from "@hailuo/review";
import { priceFor } from "../fal-connection.js";
import { numberOption } from "../options.js";
import { pickTake, quoteReroll } from "./takes.js";

/** Runs this CLI as a child (`hailuo reroll …`, `hailuo assemble …`): the page's buttons are the commands themselves. */
function hailuo(args: string[]): Promise<void> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [process.argv[1]!, ...args], {
      stdio: ["ignore", "ignore", "pipe"],
      env: process.env,
    });
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.on("close", (code) =>
      code === 0
        ? ok()
        : fail(
            new Error(
              err
                .trim()
                .split("\n")
                .findLast((l) => l.startsWith("hailuo: error")) ??
                `hailuo ${args[0]} exited with ${code}`,
            ),
          ),
    );
  });
}

/** `hailuo review <run-dir> [--port N] [--host ADDR]`: a local page to watch a run, compare and pick takes, re-roll and assemble. */
export async function reviewCommand(
  runDir: string,
  opts: { port?: string; host?: string },
  signal: AbortSignal,
): Promise<number> {
  const dir = resolve(runDir);
  await readRunManifest(dir); // not a run folder: say so before starting a server
  const price = await priceFor();
  const server = await startReviewServer({
    runDir: dir,
    host: opts.host,
    port: numberOption("port", opts.port),
    usdPerSecond: price.usdPerSecond,
    actions: {
      pick: (scene, take) => pickTake(dir, scene, take),
      quote: async (scene, takes, prompt) => ({
        usd: (await quoteReroll(dir, scene, takes, prompt)).usd,
      }),
      // The page asked and showed the cost before this click: --yes stands for that confirmation.
      // Options first and `--` before the positionals: a scene id or prompt from the page is never read as a flag.
      reroll: (scene, takes, prompt) =>
        hailuo([
          "reroll",
          "--takes",
          String(takes),
          "--yes",
          ...(prompt ? [`--prompt=${prompt}`] : []),
          "--",
          dir,
          scene,
        ]),
      assemble: () => hailuo(["assemble", "--", dir]),
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
  return 0;
}
