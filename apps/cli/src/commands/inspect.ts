import { loadManifest } from "@hailuo/manifest";
import { planRun, readRunReport, sumUsd } from "@hailuo/runner";
import { describePrice, priceFor } from "../fal-connection.js";

/** `hailuo validate <manifest>`: parse and check, nothing else. */
export async function validateCommand(file: string, opts: { json?: boolean } = {}): Promise<number> {
  const m = await loadManifest(file);
  const plan = planRun(m);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ file, ok: true, name: m.name, scenes: m.scenes.length, generations: plan.length, usd: sumUsd(plan.map((p) => p.costUsd)), assembles: Boolean(m.assemble) })}\n`);
    return 0;
  }
  process.stdout.write(`${file}: ok — "${m.name}", ${m.scenes.length} scene(s), ${plan.length} generation(s), $${sumUsd(plan.map((p) => p.costUsd)).toFixed(2)}${m.assemble ? ", assembles a film" : ""}\n`);
  return 0;
}

/** `hailuo estimate <manifest>`: what a run would cost, per scene, at the account's live price. */
export async function estimateCommand(file: string, opts: { json?: boolean }): Promise<number> {
  const m = await loadManifest(file);
  const price = await priceFor();
  const plan = planRun(m, price.usdPerSecond);
  const seconds = plan.reduce((s, p) => s + Number(p.input.duration), 0);
  const total = sumUsd(plan.map((p) => p.costUsd));
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ name: m.name, generations: plan.length, seconds, usd: total, price, items: plan.map((p) => ({ scene: p.sceneId, take: p.take, duration: p.input.duration, usd: p.costUsd })) })}\n`);
    return 0;
  }
  for (const p of plan) process.stdout.write(`${`${p.sceneId}#${p.take}`.padEnd(32)} ${p.input.duration.padStart(2)} s  $${p.costUsd.toFixed(3)}\n`);
  process.stdout.write(`total: ${plan.length} generation(s), ${seconds} s of video, $${total.toFixed(2)} at $${price.usdPerSecond}/s (768p)\n${describePrice(price)}\n`);
  return 0;
}

/** `hailuo status <run-dir>`: where a run stands, from its journal alone (no network). */
export async function statusCommand(runDir: string, opts: { json?: boolean }): Promise<number> {
  const report = await readRunReport(runDir);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return 0;
  }
  for (const i of report.items) {
    process.stdout.write(`${`${i.scene}#${i.take}`.padEnd(32)} ${i.status.padEnd(12)} ${i.requestId ?? ""}${i.file ? `  ${i.file}` : ""}${i.error ? `  ${i.error}` : ""}\n`);
  }
  const t = report.totals;
  const live = report.items.filter((i) => i.status === "interrupted").length;
  process.stdout.write(`${t.done} done, ${t.failed} failed, ${live} with a live request, ${t.pending} not started; $${t.billedUsd.toFixed(2)} billed${t.possibleDoubleChargeUsd > 0 ? `, up to $${t.possibleDoubleChargeUsd.toFixed(2)} more possibly billed by submits whose answer was lost` : ""}\n`);
  return 0;
}
