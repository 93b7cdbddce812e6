import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import {
  checkClips,
  describeStanding,
  mustBeRunFolder,
  planRun,
  readRunReport,
  recordChangedClips,
  sumUsd,
  type ClipCheck,
  type RunStore,
} from "@hailuo/runner";
import { openRunAt } from "../run-at.js";
import {
  backendFromEnv,
  describeEndpointPrice,
  describePrice,
  endpointPricesFor,
  priceFor,
  unitPricesOf,
} from "../fal-connection.js";
import { HAILUO_ENDPOINT } from "@hailuo/core";
import { spentWords } from "../progress-view.js";
import { parseVars } from "../options.js";
import { emitJson } from "../events.js";
import { loadManifestTelling, tellWarnings } from "../load-input.js";

/** A scheduled job's file (jobs/<name>/job.yaml) rather than a manifest: named so, or a mapping with schedule: and no scenes:. */
async function isJobFile(file: string): Promise<boolean> {
  if (/^job\.ya?ml$/.test(basename(file))) return true;
  if (!/\.ya?ml$/i.test(file)) return false;
  const text = await readFile(file, "utf8").catch(() => "");
  return /^schedule\s*:/m.test(text) && !/^scenes\s*:/m.test(text);
}

/** `hailuo validate <manifest | job.yaml>`: parse and check, nothing else. */
export async function validateCommand(
  file: string,
  opts: { json?: boolean; var?: string[] } = {},
): Promise<number> {
  if (await isJobFile(file)) return validateJob(file, opts);
  const m = await loadManifestTelling(file, { json: opts.json, vars: parseVars(opts.var ?? []) });
  const plan = planRun(m);
  const usd = sumUsd(plan.map((p) => p.costUsd));
  if (opts.json) {
    emitJson({
      type: "validate",
      file,
      kind: "manifest",
      name: m.name,
      scenes: m.scenes.length,
      generations: plan.length,
      usd,
      assembles: Boolean(m.assemble),
    });
    return 0;
  }
  process.stdout.write(
    `${file}: ok — "${m.name}", ${m.scenes.length} scene(s), ${plan.length} generation(s), $${usd.toFixed(2)}${m.assemble ? ", assembles a film" : ""}\n`,
  );
  return 0;
}

/** A job file: its own keys, then the manifest it runs, templated for its next fire time. */
async function validateJob(file: string, opts: { json?: boolean }): Promise<number> {
  const { loadJobDefinition, manifestForRun, nextFireTimes } = await import("@hailuo/scheduler");
  const job = await loadJobDefinition(file);
  const next = nextFireTimes(job, new Date())[0];
  const m = tellWarnings(await manifestForRun(job, next ?? new Date()), opts.json);
  const plan = planRun(m);
  const usd = sumUsd(plan.map((p) => p.costUsd));
  if (opts.json) {
    emitJson({
      type: "validate",
      file,
      kind: "job",
      name: job.name,
      scenes: m.scenes.length,
      generations: plan.length,
      usd,
      assembles: Boolean(job.assemble ?? m.assemble),
    });
    return 0;
  }
  const when = next ? `next ${formatInZone(next, job.timeZone)}` : "never fires";
  process.stdout.write(
    `${file}: ok — job "${job.name}", "${job.cron}" (${job.timeZone}), ${when}; each run: ${m.scenes.length} scene(s), ${plan.length} generation(s), $${usd.toFixed(2)}\n`,
  );
  return 0;
}

/** A moment as the job's own clock shows it: 2026-11-25 07:00 CET. */
export function formatInZone(at: Date, timeZone: string): string {
  const p = Object.fromEntries(
    new Intl.DateTimeFormat("en-GB", {
      timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
      timeZoneName: "short",
    })
      .formatToParts(at)
      .map((x) => [x.type, x.value]),
  );
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${p.timeZoneName}`;
}

/** `hailuo estimate <manifest>`: what a run would cost, per scene, at the account's live price. */
export async function estimateCommand(
  file: string,
  opts: { json?: boolean; var?: string[] },
): Promise<number> {
  const m = await loadManifestTelling(file, { json: opts.json, vars: parseVars(opts.var ?? []) });
  const [price, others] = await Promise.all([priceFor(), endpointPricesFor(m)]);
  // Where a run would go now: fal bills; the built-in or a configured emulator bills nothing.
  const backend = backendFromEnv();
  const plan = planRun(m, price.usdPerSecond, { unitPricesUsd: unitPricesOf(others) });
  const seconds = plan.reduce((s, p) => s + Number(p.input.duration ?? 6), 0);
  const total = sumUsd(plan.map((p) => p.costUsd));
  // A manifest of several endpoints: what each one costs, at its own price.
  const byEndpoint = others.length
    ? [HAILUO_ENDPOINT, ...others.map(([id]) => id)].flatMap((id) => {
        const items = plan.filter((p) => (p.endpoint ?? HAILUO_ENDPOINT) === id);
        return items.length
          ? [{ id, generations: items.length, usd: sumUsd(items.map((p) => p.costUsd)) }]
          : [];
      })
    : [];
  if (opts.json) {
    emitJson({
      type: "estimate",
      name: m.name,
      generations: plan.length,
      seconds,
      usd: total,
      price,
      ...(byEndpoint.length ? { endpoints: byEndpoint } : {}),
      items: plan.map((p) => ({
        scene: p.sceneId,
        take: p.take,
        duration: p.input.duration,
        usd: p.costUsd,
      })),
    });
    return 0;
  }
  for (const p of plan)
    process.stdout.write(
      `${`${p.sceneId}#${p.take}`.padEnd(32)} ${String(p.input.duration ?? 6).padStart(2)} s  $${p.costUsd.toFixed(3)}${others.length ? `  ${p.endpoint ?? HAILUO_ENDPOINT}` : ""}\n`,
    );
  for (const e of byEndpoint)
    process.stdout.write(`  ${e.id}: ${e.generations} generation(s), $${e.usd.toFixed(2)}\n`);
  const at = others.length ? "at each endpoint's price" : `at $${price.usdPerSecond}/s (768p)`;
  const otherPrices = others.map(([id, q]) => `${describeEndpointPrice(id, q)}\n`).join("");
  process.stdout.write(
    `total: ${plan.length} generation(s), ${seconds} s of video, $${total.toFixed(2)} ${at}\n${describePrice(price)}\n${otherPrices}${
      backend?.kind === "fal"
        ? ""
        : `a run here would be emulated, nothing billed (${backend ? "FAL_EMULATOR_URL is set" : "no FAL_KEY: the built-in emulator"})\n`
    }`,
  );
  return 0;
}

/**
 * `hailuo status <run-dir>`: where a run stands, from its journal and its files (no network). Each
 * clip is checked as resume does (a stat; a hash when its time changed): one changed on disk
 * is named, and the exit code is 1. `--verify` hashes every clip (bit rot keeps size and time)
 * and journals the changed ones as paid-not-saved, so `hailuo resume` downloads them again.
 */
export async function statusCommand(
  runDir: string,
  opts: { json?: boolean; verify?: boolean; redis?: string; prefix?: string },
): Promise<number> {
  // A folder, or a bucket whose records live in Redis.
  const { store, close } = await openRunAt(runDir, opts);
  try {
    return await statusOf(store, runDir, opts);
  } finally {
    await close();
  }
}

async function statusOf(
  store: RunStore,
  runDir: string,
  opts: { json?: boolean; verify?: boolean },
): Promise<number> {
  await mustBeRunFolder(store);
  // Checked before the report is read: what --verify journals shows in it.
  const changed = (
    await checkClips(store, { hash: opts.verify ? "all" : "touched" }).catch(
      () => [] as ClipCheck[],
    )
  ).filter((c) => c.standing !== "intact");
  if (opts.verify) await recordChangedClips(store, changed);
  const report = await readRunReport(store);
  const exit = changed.length ? 1 : 0;
  if (opts.json) {
    emitJson({
      type: "status",
      report,
      ...(changed.length
        ? {
            changedClips: changed.map(({ key, file, requestId, standing }) => ({
              key,
              file,
              requestId,
              standing,
            })),
          }
        : {}),
    });
    return exit;
  }
  const changedBy = new Map(changed.map((c) => [c.file, c]));
  const changedNote = (file: string | undefined) => {
    const c = file ? changedBy.get(file) : undefined;
    return c
      ? `  changed on disk: ${describeStanding(c.standing as Exclude<typeof c.standing, "intact">)}`
      : "";
  };
  // One write: a line each would be 10,000 system calls in a big run.
  const rows = report.items.map(
    (i) =>
      `${`${i.scene}#${i.take}`.padEnd(32)} ${(changedBy.has(i.file ?? "") ? "changed" : i.status).padEnd(12)} ${i.requestId ?? ""}${i.file ? `  ${i.file}` : ""}${changedNote(i.file)}${i.error ? `  ${i.error}` : ""}\n`,
  );
  const t = report.totals;
  const live = report.items.filter((i) => i.status === "interrupted").length;
  process.stdout.write(
    `${rows.join("")}${t.done} done, ${t.failed} failed, ${live} with a live request, ${t.pending} not started; ${spentWords(t.billedUsd, report.amounts)}${t.possibleDoubleChargeUsd > 0 ? `, up to $${t.possibleDoubleChargeUsd.toFixed(2)} more possibly ${report.amounts === "emulated" ? "counted" : "billed"} by submits whose answer was lost` : ""}\n`,
  );
  // What the amounts above cannot vouch for (an unconfirmed price, damaged journal lines).
  for (const c of report.caveats) process.stdout.write(`caveat: ${c.message}\n`);
  if (changed.length) {
    const n = changed.length === 1 ? "1 clip has" : `${changed.length} clips have`;
    process.stdout.write(
      `${n} changed on disk since its download: \`hailuo resume ${runDir}\` downloads ${changed.length === 1 ? "it" : "them"} again from the paid request (no new submit)\n`,
    );
  } else if (!opts.verify && report.items.some((i) => i.file)) {
    process.stdout.write("clips checked by size and time (`--verify` hashes every one)\n");
  }
  return exit;
}
