import { resolve } from "node:path";
import { MAX_TAKES } from "@hailuo/manifest";
import {
  BudgetError,
  RunLockedError,
  readRunReport,
  previewRun,
  quoteReroll,
  readRunManifest,
  writePick,
  type RunAt,
  type RunStore,
} from "@hailuo/runner";
import { isBucketUrl } from "@hailuo/store";
import { openRunAt, type RunAtOptions } from "../run-at.js";
import { displayPath } from "../display-path.js";
import { emitJson } from "../events.js";
import { UsageError } from "../exit-codes.js";
import { endpointPricesFor, priceFor, unitPricesOf } from "../fal-connection.js";
import { numberOption } from "../options.js";
import { execute, runNumbers, type RunCommandOptions } from "./run.js";

/** `hailuo pick <run-dir> <scene> <take>`: the take the film uses for a scene (picks.json). */
export async function pickCommand(
  address: string,
  scene: string,
  takeText: string,
  opts: { json?: boolean } & RunAtOptions,
): Promise<number> {
  const take = numberOption("take", takeText, { min: 1 })!;
  const { store, run, close } = await openRunAt(address, opts);
  let stale: Awaited<ReturnType<typeof staleAfterPick>>;
  try {
    await pickTake(run, scene, take);
    // Scenes that continue from this one now start from another frame: a run makes them anew.
    stale = await staleAfterPick(store);
  } finally {
    await close();
  }
  const shown = isBucketUrl(address) ? address : displayPath(resolve(address));
  if (opts.json) emitJson({ type: "picked", scene, take, ...(stale.length ? { stale } : {}) });
  else {
    process.stderr.write(
      `${scene}: take ${take} is the one the film uses; remake the film with: pnpm hailuo assemble ${shown}\n`,
    );
    for (const s of stale)
      process.stderr.write(
        `stale now: ${s.scene}#${s.take} ($${s.usd.toFixed(3)}): \`hailuo resume ${shown}\` makes it anew from the new pick\n`,
      );
  }
  return 0;
}

/** The scene-takes a run would make anew now (they continue from a changed pick). */
async function staleAfterPick(run: RunStore) {
  const manifest = await readRunManifest(run);
  const others = endpointPricesFor(manifest);
  const preview = await previewRun(run, manifest, {
    usdPerSecond: priceFor().then((p) => p.usdPerSecond),
    unitPricesUsd: others.then(unitPricesOf),
  });
  return preview.regenerate.map(({ item }) => ({
    scene: item.sceneId,
    take: item.take,
    usd: item.costUsd,
  }));
}

/** Records a pick after checking that the scene exists and the take has a clip (the review page's pick too). */
export async function pickTake(run: string | RunStore, scene: string, take: number): Promise<void> {
  const report = await readRunReport(run);
  const takes = report.items.filter((i) => i.scene === scene);
  const name = typeof run === "string" ? displayPath(resolve(run)) : run.url;
  if (!takes.length)
    throw new UsageError(
      `no scene ${scene} in ${name} (scenes: ${[...new Set(report.items.map((i) => i.scene))].join(", ")})`,
    );
  const row = takes.find((i) => i.take === take);
  if (!row?.file) {
    const have = takes.filter((i) => i.file).map((i) => i.take);
    throw new UsageError(
      `take ${take} of ${scene} has no clip${row ? ` (${row.status}${row.error ? `: ${row.error}` : ""})` : " (no such take)"}; takes with a clip: ${have.join(", ") || "none yet"}`,
    );
  }
  await writePick(run, scene, take);
}

/** Options of `hailuo reroll`. */
export interface RerollOptions extends RunCommandOptions, RunAtOptions {
  prompt?: string;
  takes: string;
}

/**
 * `hailuo reroll <run> <scene> [--prompt …] [--takes N]`: more takes of one scene, through the
 * same runner and journal as a run, a folder or a bucket run. Budget and the question come before
 * run.json records anything, so a refusal leaves the run as it was; an interrupted re-roll is
 * finished by `hailuo resume`.
 */
export async function rerollCommand(
  address: string,
  scene: string,
  opts: RerollOptions,
  signal: AbortSignal,
): Promise<number> {
  const count = numberOption("takes", opts.takes, { min: 1, max: MAX_TAKES })!;
  const { budgetUsd } = runNumbers(opts);
  const { store, run, close } = await openRunAt(address, opts);
  try {
    const quote = await quoteRerollNow(run, scene, count, opts.prompt);
    if (budgetUsd !== undefined && quote.usd > budgetUsd) {
      throw new BudgetError(
        `re-rolling ${scene} ${count} time(s) costs up to $${quote.usd.toFixed(2)}, over the budget of $${budgetUsd.toFixed(2)}; nothing was submitted or recorded`,
      );
    }
    if (await store.owned())
      throw new RunLockedError(
        `${store.kind === "local" ? displayPath(store.dir) : store.url} is being run by another hailuo process (${store.kind === "local" ? "run.lock is held" : "its lease in Redis is live"}); re-roll when it has finished`,
      );
    const keys = new Set(quote.keys);
    // Only the new takes are worked on; the film stays as it is until `hailuo assemble`.
    return await execute(quote.manifest, run, opts, signal, {
      only: (item) => keys.has(item.key),
      film: false,
    });
  } finally {
    await close();
  }
}

/** What a re-roll would add and cost at the account's live price, without recording anything. */
export async function quoteRerollNow(runDir: RunAt, scene: string, count: number, prompt?: string) {
  const [price, others] = await Promise.all([
    priceFor(),
    readRunManifest(runDir).then((m) => endpointPricesFor(m)),
  ]);
  const quote = await quoteReroll(runDir, scene, count, {
    prompt,
    usdPerSecond: price.usdPerSecond,
    unitPricesUsd: unitPricesOf(others),
  });
  return { ...quote, price };
}
