import { createHash } from "node:crypto";
import { isAbsolute } from "node:path";
import { html, raw, staleText, type PageImage, type RawHtml } from "@hailuo/publish";
import { describeChange } from "./film-status.js";
import type { ReviewState, SceneView, TakeView } from "./review-state.js";

/**
 * The page's parts, each a piece of markup the server renders (once for the first paint, again
 * on every change) and the page swaps in whole when its signature changes. Keys: `head`,
 * `overview`, `film-player`, `film-status`, `stale`, and per scene `scene-head:<id>` and `takes:<id>`.
 * The re-roll form is not a part: it is drawn once, so typing in it is never lost.
 */
export type ReviewParts = Record<string, { sig: string; html: string }>;

/** A path of the run folder as the server's `/files/` address, each segment encoded. */
const fileUrl = (rel: string) => `/files/${rel.split("/").map(encodeURIComponent).join("/")}`;
/** A thumbnail's address with its modification time: a new file is a new address. */
const thumbUrl = (s: ReviewState, rel: string) =>
  `${fileUrl(rel)}${s.stamps[rel] ? `?v=${s.stamps[rel]}` : ""}`;
const money = (usd: number) => `$${usd.toFixed(2)}`;
const secs = (s: number) => `${s.toFixed(1)} s`;
const clock = (s: number) => {
  const r = Math.round(s);
  return `${Math.floor(r / 60)}:${String(r % 60).padStart(2, "0")}`;
};
/** "fade 0.5 s in", "cut in", "start", "after the title card". */
export function transitionText(t: SceneView["transitionIn"]): string {
  if (t.from === "start") return "start";
  if (t.from === "title") return "after the title card";
  return t.type === "cut" || t.durationS === 0 ? "cut in" : `${t.type} ${secs(t.durationS)} in`;
}

function head(s: ReviewState): RawHtml {
  const t = s.totals;
  // A run against an emulator counted fal's price and paid nothing: the page must not say billed.
  const amount =
    s.amounts === "emulated"
      ? `emulated, nothing billed (${money(t.billedUsd)} at fal's price)`
      : `${money(t.billedUsd)} billed`;
  const totals = [
    `${t.done}/${t.clips} done`,
    `${t.running} running`,
    `${t.waiting} waiting`,
    `${t.failed} failed`,
    amount,
    ...(s.elapsedS !== undefined ? [`${clock(s.elapsedS)} elapsed`] : []),
    ...(s.etaS !== undefined ? [`ETA ${clock(s.etaS)}`] : []),
  ].join(" · ");
  const jobs = s.jobs
    .map((j) => `${j.what}: ${j.state}${j.message ? ` (${j.message})` : ""}`)
    .join(" · ");
  return html`<h1 id="name">${s.name}</h1><p id="totals" class="meta">${totals}</p><p id="jobs" class="meta">${jobs}</p>`;
}

const picked = (scene: SceneView) => scene.takes.find((t) => t.chosen);

function tile(s: ReviewState, scene: SceneView, n: number): RawHtml {
  const take = picked(scene);
  const change = s.film?.changes.find((c) => c.scene === scene.id);
  const done = scene.takes.filter((t) => t.status === "done").length;
  const state = take
    ? `take ${take.take} · ${secs(scene.seconds)}`
    : `${done}/${scene.takes.length} takes · ${scene.duration} s asked`;
  const film = !s.film
    ? ""
    : change
      ? html`<span class="tile-film stale">film: ${change.filmTake ? `take ${change.filmTake}` : "not in it"}</span>`
      : html`<span class="tile-film">${scene.takes.some((t) => t.inFilm) ? "in the film" : "not in the film"}</span>`;
  const remake = take?.stale ? take.remakeUsd : undefined;
  // A scene continuing the one just before it is drawn joined to its tile.
  const joined = scene.continueFrom !== undefined && s.scenes[n - 1]?.id === scene.continueFrom;
  return html`<li${joined ? html` class="joined"` : ""}><a class="tile${change ? " stale" : ""}" href="#scene-${scene.id}" data-index="${n}" data-scene="${scene.id}">
${take?.poster ? html`<img src="${thumbUrl(s, take.poster)}" alt="" loading="lazy">` : html`<span class="blank"></span>`}
<span class="tile-name"><b>${n + 1}</b> ${scene.id}</span>
<span>${state}</span>
<span>${transitionText(scene.transitionIn)}</span>
<span class="model" title="${scene.endpoint}">${scene.model}</span>
${chain(scene).map((c) => html`<span class="chain">${c}</span>`)}
${take?.stale ? html`<span class="tile-stale" title="${take.stale}">stale${remake !== undefined ? `: ${money(remake)} to make anew` : ""}</span>` : ""}
${film}</a></li>`;
}

/** "continues s2", "s3 continues from here". */
function chain(scene: SceneView): string[] {
  return [
    ...(scene.continueFrom ? [`continues ${scene.continueFrom}`] : []),
    ...scene.continuedBy.map((id) => `${id} continues from here`),
  ];
}

/** A start or end image: its copy in the run folder, a link to its URL, or its name. */
function frame(role: string, image: PageImage): RawHtml {
  if (image.kind === "file" || image.kind === "frame") {
    const caption =
      image.kind === "file"
        ? `${role}: ${image.name}, ${image.width}×${image.height}`
        : `${role}: last frame of ${image.from}`;
    return html`<figure class="frame"><img src="${fileUrl(image.file)}" alt="${caption}" loading="lazy"><figcaption>${caption}</figcaption></figure>`;
  }
  if (image.kind === "url")
    return html`<figure class="frame"><a href="${image.url}" target="_blank" rel="noopener noreferrer">${role}: ${image.url}</a></figure>`;
  return html`<figure class="frame"><span class="error">${role}: ${image.name} (not shown: ${image.why})</span></figure>`;
}

/** The takes a pick made stale, what making each anew costs, and the command that does. */
function staleNotice(s: ReviewState): RawHtml {
  if (!s.stale.length) return html``;
  return html`<ul>${s.stale.map((t) => html`<li data-scene="${t.scene}" data-take="${t.take}">${staleText(t)}</li>`)}</ul>
<p>Nothing is made anew until you run <code>${s.resume}</code> (${money(s.staleUsd)} in all).</p>`;
}

function overview(s: ReviewState): RawHtml {
  return html`<h2 class="sr">Scenes</h2><ol class="tiles">${s.scenes.map((scene, n) => tile(s, scene, n))}</ol>`;
}

function filmPlayer(s: ReviewState): RawHtml {
  const f = s.film;
  // A film written outside the run folder is not served: its place is named instead.
  if (!f) return html``;
  if (isAbsolute(f.file)) return html`<p class="meta">The film is at ${f.file}.</p>`;
  const v = `?v=${encodeURIComponent(f.madeAt)}`;
  return html`<video id="film-video" controls preload="metadata" src="${fileUrl(f.file)}${v}">
<track kind="chapters" default src="${fileUrl(`${f.file}.chapters.vtt`)}${v}"></video>
<ol id="chapters">${f.chapters.map(
    (c) =>
      html`<li><button type="button" class="chapter" data-start="${c.startS}">${c.scene}${c.take ? ` · take ${c.take}` : " · placeholder"}</button></li>`,
  )}</ol>`;
}

function filmStatus(s: ReviewState): RawHtml {
  const f = s.film;
  const running = s.jobs.some((j) => j.state === "running" && j.what === "assemble");
  const anyClip = s.scenes.some((scene) => scene.takes.some((t) => t.clip));
  const label = running
    ? "Assembling…"
    : !f
      ? "Assemble the film"
      : f.changes.length
        ? "Assemble for the current picks"
        : "Assemble again";
  const button = html`<button id="assemble" type="button"${running || !anyClip ? html` disabled` : ""}>${label}</button>`;
  if (!f)
    return html`<p class="film-state"><b>No film yet.</b> ${anyClip ? "" : "It can be assembled once a clip is ready."}</p>${button}`;
  const made = html`${secs(f.durationS)}, made ${f.madeAt.replace("T", " ").slice(0, 19)} UTC`;
  if (!f.changes.length)
    return html`<p class="film-state fresh"><b>The film is up to date</b> with the picks (${made}).</p>${button}`;
  return html`<p class="film-state stale"><b>The film is out of date</b> (${made}):</p>
<ul class="changes">${f.changes.map((c) => html`<li data-scene="${c.scene}">${describeChange(c)}</li>`)}</ul>${button}`;
}

function sceneHead(s: ReviewState, scene: SceneView, n: number): RawHtml {
  const take = picked(scene);
  const used = scene.takes.find((t) => t.inFilm);
  const facts = [
    take ? `take ${take.take} picked` : "no take yet",
    secs(scene.seconds),
    transitionText(scene.transitionIn),
    ...(s.film ? [used ? `film: take ${used.take}` : "not in the film"] : []),
  ].join(" · ");
  const frames = [
    ...(scene.image ? [frame("start", scene.image)] : []),
    ...(scene.endImage ? [frame("end", scene.endImage)] : []),
  ];
  return html`<h2 id="title-${scene.id}"><span class="num">${n + 1}</span> ${scene.id}</h2><p class="facts">${facts}</p>
<p class="facts model" title="${scene.endpoint}">${scene.model}</p>
${chain(scene).map((c) => html`<p class="facts chain">${c}</p>`)}
${frames.length ? html`<div class="frames">${frames}</div>` : ""}`;
}

function takeCard(s: ReviewState, scene: SceneView, t: TakeView): RawHtml {
  const cls = `take${t.chosen ? " chosen" : ""}${t.inFilm ? " in-film" : ""}${t.stale ? " stale" : ""}`;
  const player = t.clip
    ? html`<video controls preload="${t.poster ? "none" : "metadata"}" src="${fileUrl(t.clip)}"${t.poster ? html` poster="${thumbUrl(s, t.poster)}"` : ""}></video>`
    : html`<div class="blank">${t.status}</div>`;
  const status = [
    t.status,
    ...(t.seconds !== undefined ? [secs(t.seconds)] : []),
    ...(t.costUsd ? [money(t.costUsd)] : []),
  ].join(" · ");
  return html`<figure class="${cls}" data-take="${t.take}" data-status="${t.status}"${t.preview ? html` data-preview="${thumbUrl(s, t.preview)}"` : ""}>
${player}
<figcaption><div class="line"><b>take ${t.take}</b>${t.take <= 9 ? html` <kbd title="press ${t.take} to pick it">${t.take}</kbd>` : ""}${t.chosen ? html` <span class="badge picked">picked</span>` : ""}${t.inFilm ? html` <span class="badge film">in the film</span>` : ""}
${t.chosen ? "" : html`<button type="button" class="pick" data-scene="${scene.id}" data-take="${t.take}"${t.clip ? "" : html` disabled`} aria-label="Pick take ${t.take} of ${scene.id}">Pick</button>`}</div>
<div class="status"${t.endpoint ? html` title="${t.endpoint}"` : ""}>${status}</div>
${t.prompt !== scene.prompt ? html`<div class="prompt">prompt: ${t.prompt}</div>` : ""}
${t.stale ? html`<div class="stale-note"><span class="badge stale">stale</span> ${t.remakeUsd !== undefined ? `${money(t.remakeUsd)} to make anew: ` : ""}${t.stale}</div>` : ""}
${t.error ? html`<div class="error">${t.error}</div>` : ""}</figcaption>
</figure>`;
}

const sig = (markup: string) => createHash("sha1").update(markup).digest("base64url").slice(0, 16);

/** Every part of the page for a state (pure). */
export function reviewParts(s: ReviewState): ReviewParts {
  const parts: Record<string, RawHtml> = {
    head: head(s),
    overview: overview(s),
    "film-player": filmPlayer(s),
    "film-status": filmStatus(s),
    stale: staleNotice(s),
  };
  s.scenes.forEach((scene, n) => {
    parts[`scene-head:${scene.id}`] = sceneHead(s, scene, n);
    parts[`takes:${scene.id}`] = html`${scene.takes.map((t) => takeCard(s, scene, t))}`;
  });
  return Object.fromEntries(
    Object.entries(parts).map(([k, v]) => [k, { sig: sig(v.value), html: v.value }]),
  );
}

/** The attributes that make an element the page's part `key`, with its markup inside it. */
export function part(
  parts: ReviewParts,
  key: string,
  tag: string,
  attrs: RawHtml = html``,
): RawHtml {
  const p = parts[key] ?? { sig: "", html: "" };
  // The part's markup was made by `html` above: inserted as it is.
  return html`${raw(`<${tag}`)} data-part="${key}" data-sig="${p.sig}"${attrs}>${raw(p.html)}${raw(`</${tag}>`)}`;
}
