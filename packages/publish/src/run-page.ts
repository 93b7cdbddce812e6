import type { ItemReport, RunReport } from "@hailuo/runner";
import { html, type RawHtml } from "./html.js";
import {
  shellWord,
  staleText,
  type PageFacts,
  type PageImage,
  type SceneFacts,
  type StaleTake,
} from "./scene-facts.js";

/** Media made for the page, as paths relative to the run folder. */
export interface PageMedia {
  film?: { file: string; durationS: number; mode: string; reason?: string };
  sheet?: string;
  /** Every page of the contact sheet (the first is `sheet`). */
  sheetPages?: string[];
  posters: Record<string, string>;
  previews: Record<string, string>;
}

/** A relative path as a URL path: each segment encoded, so odd file names stay links. */
function href(rel: string): string {
  return rel.split("/").map(encodeURIComponent).join("/");
}

const money = (usd: number) => `$${usd.toFixed(2)}`;

/** A start or end image: a thumbnail of its copy in the folder, a link to its URL, or its name. */
function imageFigure(role: string, image: PageImage): RawHtml {
  if (image.kind === "file" || image.kind === "frame") {
    const caption =
      image.kind === "file"
        ? `${role}: ${image.name}, ${image.width}×${image.height}`
        : `${role}: last frame of ${image.from}`;
    return html`<figure class="frame"><a href="${href(image.file)}"><img src="${href(image.file)}" alt="${caption}" loading="lazy"></a><figcaption>${caption}</figcaption></figure>`;
  }
  if (image.kind === "url")
    return html`<figure class="frame"><a class="url" href="${image.url}" rel="noreferrer">${role}: ${image.url}</a></figure>`;
  return html`<figure class="frame"><span class="missing-image">${role}: ${image.name} (not shown: ${image.why})</span></figure>`;
}

/** The scene's model, its start and end images, and where it stands in a chain. */
function sceneRows(scene: SceneFacts | undefined): { rows: [string, string][]; frames: RawHtml } {
  if (!scene) return { rows: [], frames: html`` };
  const rows: [string, string][] = [["model", scene.model]];
  if (scene.continueFrom) rows.push(["chain", `continues ${scene.continueFrom}`]);
  for (const next of scene.continuedBy) rows.push(["chain", `${next} continues from here`]);
  const images = [
    ...(scene.image ? [imageFigure("start", scene.image)] : []),
    ...(scene.endImage ? [imageFigure("end", scene.endImage)] : []),
  ];
  return { rows, frames: images.length ? html`<div class="frames">${images}</div>` : html`` };
}

/** What a stale take says: why, and what making it anew costs. */
function staleRows(item: ItemReport, stale: StaleTake | undefined): [string, string][] {
  if (!item.stale && !stale) return [];
  return [
    ["stale", item.stale ?? stale!.reason],
    ...(stale ? ([["to make anew", money(stale.usd)]] as [string, string][]) : []),
  ];
}

function card(
  item: ItemReport,
  media: PageMedia,
  emulated: boolean,
  facts: { scene?: SceneFacts; stale?: StaleTake },
): RawHtml {
  const poster = item.file ? media.posters[item.file] : undefined;
  const preview = item.file ? media.previews[item.file] : undefined;
  const player = item.file
    ? html`<video controls preload="none" src="${href(item.file)}"${poster ? html` poster="${href(poster)}"` : ""}></video>`
    : html`<div class="missing">${item.status === "failed" ? "not generated" : item.status}</div>`;
  const rows: [string, string][] = [
    ["status", item.status],
    [
      "duration",
      item.seconds !== undefined ? `${item.seconds.toFixed(2)} s` : `${item.duration} s asked`,
    ],
    ["attempts", String(item.attempts)],
    [emulated ? "cost (emulated, at fal's price)" : "cost", `$${item.costUsd.toFixed(3)}`],
    ["request", item.requestId ?? "—"],
  ];
  const scene = sceneRows(facts.scene);
  rows.unshift(...scene.rows);
  rows.push(...staleRows(item, facts.stale));
  if (item.sameAs) rows.push(["same as", item.sameAs]);
  if (item.possibleDoubleChargeUsd > 0)
    rows.push(["possible double charge", `$${item.possibleDoubleChargeUsd.toFixed(3)}`]);
  const stale = Boolean(item.stale || facts.stale);
  return html`<article class="scene ${item.status}${item.chosen ? " chosen" : ""}${stale ? " stale" : ""}" id="scene-${item.scene}-${item.take}">
  <h2>${item.scene}${item.take > 1 ? html` <small>take ${item.take}</small>` : ""}${item.chosen ? html` <span class="badge">in the film</span>` : ""}${stale ? html` <span class="badge stale">stale</span>` : ""}</h2>
  ${player}
  ${scene.frames}
  ${preview ? html`<a class="preview" href="${href(preview)}">animated preview</a>` : ""}
  <p class="prompt">${item.prompt}</p>
  <dl>${rows.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>
  ${item.error ? html`<p class="error">${item.errorCode ?? "error"}: ${item.error}</p>` : ""}
</article>`;
}

/**
 * The takes a pick upstream made stale, what making each anew costs, and the command that does
 * (nothing is made anew without one). Without `facts`, the report's marks alone.
 */
function staleNotice(report: RunReport, facts: PageFacts | undefined): RawHtml {
  const priced = new Set(facts?.stale.map((s) => `${s.scene}#${s.take}`));
  const unpriced = report.items.filter((i) => i.stale && !priced.has(`${i.scene}#${i.take}`));
  if (!priced.size && !unpriced.length) return html``;
  const lines = [
    ...(facts?.stale ?? []).map(staleText),
    ...unpriced.map((i) => `${i.scene}#${i.take} will be made anew: ${i.stale}`),
  ];
  const cost = priced.size ? ` (${money(facts!.staleUsd)})` : "";
  return html`<section class="stale-notice"><p><b>Stale after another pick upstream:</b></p>
<ul>${lines.map((l) => html`<li>${l}</li>`)}</ul>
<p>Their clips stay until <code>${facts?.resume ?? `hailuo resume ${shellWord(report.runDir)}`}</code> makes them anew${cost}.</p></section>`;
}

/**
 * The run's `index.html`: the film on top, totals, the contact sheet, then one card per scene with
 * poster, player, prompt, status, attempts, cost and error, and (given `facts`, see `pageFacts`)
 * its model, start and end images, chain, and the cost of making a stale take anew. Static and
 * offline (works from file://); built with `html`, which escapes every value unless it is asked
 * not to.
 */
export function renderRunPage(report: RunReport, media: PageMedia, facts?: PageFacts): string {
  const t = report.totals;
  // A run against an emulator counted fal's price and paid nothing: the page must not say billed.
  const emulated = report.amounts === "emulated";
  const totals: [string, string][] = [
    ["clips", String(t.items)],
    ["done", String(t.done + t.cached)],
    ["failed", String(t.failed)],
    ["not finished", String(t.interrupted + t.pending)],
    [
      emulated ? "emulated, nothing billed (at fal's price)" : "billed",
      `$${t.billedUsd.toFixed(2)}`,
    ],
  ];
  const sceneOf = new Map(facts?.scenes.map((s) => [s.id, s]));
  const staleOf = new Map(facts?.stale.map((s) => [`${s.scene}#${s.take}`, s]));
  if (t.unsaved > 0) totals.push(["paid, not saved (resume downloads them)", String(t.unsaved)]);
  if (t.possibleDoubleChargeUsd > 0)
    totals.push(["possible double charge", `$${t.possibleDoubleChargeUsd.toFixed(2)}`]);
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${report.name} — hailuo run</title>
<style>
  :root { color-scheme: dark; font-family: system-ui, sans-serif; background: #0d0f12; color: #e8e8e8; }
  body { margin: 0 auto; max-width: 1200px; padding: 24px; }
  h1 { margin: 0 0 4px; } .meta { color: #9aa; margin: 0 0 16px; }
  .film video, .sheet img { width: 100%; border-radius: 8px; background: #000; }
  .totals { display: flex; gap: 24px; flex-wrap: wrap; margin: 16px 0; padding: 0; list-style: none; }
  .totals li { background: #171a20; padding: 8px 14px; border-radius: 6px; } .totals b { display: block; font-size: 1.3em; }
  .scenes { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 16px; }
  .scene { background: #171a20; border-radius: 8px; padding: 12px; border-left: 4px solid #3a7; }
  .scene.failed { border-color: #d44; } .scene.chosen { outline: 2px solid #8cf; } .badge { font-size: .75em; background: #8cf; color: #000; border-radius: 4px; padding: 1px 6px; } .scene.interrupted, .scene.pending { border-color: #da3; }
  .scene h2 { font-size: 1.05em; margin: 0 0 8px; } .scene video { width: 100%; border-radius: 4px; background: #000; aspect-ratio: 1366 / 768; }
  .missing { aspect-ratio: 1366 / 768; display: grid; place-items: center; background: #221; color: #d88; border-radius: 4px; }
  .prompt { font-size: .92em; line-height: 1.4; } .error { color: #f88; font-size: .9em; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; font-size: .85em; color: #bbb; margin: 0; } dd { margin: 0; overflow-wrap: anywhere; }
  a { color: #8cf; }
  .scene.stale { border-color: #fb6; } .badge.stale { background: #fb6; }
  .stale-notice { background: #2a2214; border-left: 4px solid #fb6; border-radius: 6px; padding: 4px 14px; margin: 16px 0; }
  .frames { display: flex; gap: 8px; margin: 8px 0; } .frame { margin: 0; flex: 1 1 0; min-width: 0; font-size: .8em; color: #bbb; }
  .frame img { width: 100%; aspect-ratio: 16 / 9; object-fit: contain; background: #000; border-radius: 4px; display: block; }
  .frame .url { overflow-wrap: anywhere; } .missing-image { color: #d88; }
</style>
</head>
<body>
<h1>${report.name}</h1>
<p class="meta">${report.manifest} · report made ${report.generatedAt} · <a href="report.csv">report.csv</a> · <a href="report.json">report.json</a></p>${emulated ? html`\n<p class="meta emulated">Made by an emulator of fal: nothing was billed. Amounts are what fal would charge for the same clips.</p>` : ""}
${media.film ? html`<section class="film"><video controls preload="metadata" src="${href(media.film.file)}"></video><p class="meta">film: ${media.film.file}, ${media.film.durationS.toFixed(2)} s (${media.film.mode})</p></section>` : ""}
<ul class="totals">${totals.map(([k, v]) => html`<li><b>${v}</b>${k}</li>`)}</ul>
${media.sheet ? html`<section class="sheet">${(media.sheetPages ?? [media.sheet]).map((p, i) => html`<img alt="contact sheet${i ? ` page ${i + 1}` : ""}" loading="lazy" src="${href(p)}">`)}</section>` : ""}
${staleNotice(report, facts)}
<section class="scenes">
${report.items.map((i) => html`${card(i, media, emulated, { scene: sceneOf.get(i.scene), stale: staleOf.get(`${i.scene}#${i.take}`) })}\n`)}
</section>
</body>
</html>
`.value;
}
