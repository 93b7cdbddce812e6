import { html, raw, type RawHtml } from "@hailuo/publish";
import type { ReviewState } from "./review-state.js";
import { part, reviewParts } from "./review-view.js";

/** Options of `reviewPage`. */
export interface ReviewPageOptions {
  /** The nonce the page's Content-Security-Policy allows its one script and style sheet by. */
  nonce: string;
  /** Why there is no state to draw (the folder could not be read); shown instead of the run. */
  error?: string;
}

/** The page's icon, inline: the browser asks for no /favicon.ico. */
export const FAVICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">' +
  '<rect width="16" height="16" rx="3" fill="#2b6cb0"/>' +
  '<path d="M5 4l7 4-7 4z" fill="#fff"/></svg>';

/**
 * The review page, drawn on the server from the run's state (it reads without JavaScript), then
 * kept live by its script, which swaps in the parts /api/events sends when they change. Every
 * value goes through `html`, which escapes it; the script never builds markup from run text.
 */
export function reviewPage(state: ReviewState | undefined, options: ReviewPageOptions): string {
  const parts = state ? reviewParts(state) : {};
  const scenes = state?.scenes ?? [];
  const doc: RawHtml = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${state ? `${state.name} · hailuo review` : "hailuo review"}</title>
<link rel="icon" type="image/svg+xml" href="data:image/svg+xml,${encodeURIComponent(FAVICON_SVG)}">
<style nonce="${options.nonce}">${raw(STYLE)}</style>
</head>
<body data-drawn="${state ? "yes" : "no"}">
${part(parts, "head", "header")}
<p class="help" id="help">Keys: <kbd>j</kbd> or <kbd>↓</kbd> <kbd>→</kbd> next scene · <kbd>k</kbd> or <kbd>↑</kbd> <kbd>←</kbd> previous scene · <kbd>1</kbd>–<kbd>9</kbd> pick that take of the current scene · click a scene below to go to it</p>
<noscript><p class="note">Picking, re-rolling, assembling and live updates need JavaScript; this is the run as it was when the page loaded.</p></noscript>
${options.error ? html`<p class="error">${options.error}</p>` : ""}
<p id="flash" role="status" aria-live="polite"></p>
${part(parts, "stale", "aside", html` id="stale" class="stale-notice" role="status" aria-label="Stale takes"`)}
${part(parts, "overview", "nav", html` id="overview" aria-label="Scenes"`)}
<section id="film" aria-label="The film">
${part(parts, "film-player", "div", html` class="film-player"`)}
${part(parts, "film-status", "div", html` id="film-status" class="film-status"`)}
</section>
<main id="scenes">
${scenes.map(
  (
    scene,
    n,
  ) => html`<section class="scene${n === 0 ? " current" : ""}" id="scene-${scene.id}" data-scene="${scene.id}" data-index="${n}" aria-labelledby="title-${scene.id}">
<div class="side">
${part(parts, `scene-head:${scene.id}`, "div", html` class="scene-head"`)}
<form class="reroll" data-scene="${scene.id}">
<label>Prompt for a re-roll <textarea name="prompt" rows="3">${scene.prompt}</textarea></label>
<div class="row"><label>Takes <input type="number" name="takes" min="1" max="8" value="1"></label>
<button type="button" class="ask">Re-roll…</button>
<button type="button" class="confirm" hidden></button></div>
<span class="note"></span>
</form>
</div>
${part(parts, `takes:${scene.id}`, "div", html` class="takes"`)}
</section>
`,
)}</main>
<script nonce="${options.nonce}">${raw(SCRIPT)}</script>
</body>
</html>
`;
  return doc.value;
}

const STYLE = `
  :root { color-scheme: dark; font-family: system-ui, sans-serif; background: #0d0f12; color: #e8e8e8; }
  body { margin: 0 auto; max-width: 1400px; padding: 16px 20px; } h1 { margin: 0; font-size: 1.5em; }
  .meta, .help { color: #9aa; margin: 4px 0; } .help { font-size: .85em; } .help kbd { font-size: 1em; } .sr { position: absolute; left: -9999px; }
  kbd { background: #262b33; border: 1px solid #3a404a; border-radius: 3px; padding: 0 4px; font-size: .85em; }
  button { background: #2b6cb0; color: #fff; border: 0; border-radius: 5px; padding: 6px 12px; cursor: pointer; font: inherit; }
  button:disabled { background: #333; color: #888; cursor: default; }
  #flash:empty { display: none; } #flash { color: #fd6; margin: 6px 0; } .error { color: #f88; }
  .tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 8px; padding: 0; margin: 10px 0; list-style: none; }
  .tile { display: flex; flex-direction: column; gap: 1px; background: #171a20; border: 2px solid transparent; border-radius: 6px; padding: 5px; color: inherit; text-decoration: none; font-size: .8em; }
  .tile img, .tile .blank { width: 100%; aspect-ratio: 16 / 9; object-fit: cover; background: #000; border-radius: 3px; display: block; margin-bottom: 3px; }
  .tile.current { border-color: #fd6; } .tile:hover { border-color: #567; } .tile-name { font-size: 1.15em; }
  .tile .model, .tile .chain { color: #9aa; } .tile-stale { color: #fb6; }
  .tiles li { position: relative; display: flex; } .tiles li > .tile { flex: 1; }
  .tiles li.joined::before { content: ""; position: absolute; left: -10px; top: 30%; width: 12px; height: 4px; background: #8cf; border-radius: 2px; }
  #stale:empty { display: none; } #stale { background: #2a2214; border-left: 4px solid #fb6; border-radius: 6px; padding: 2px 14px; margin: 8px 0; }
  #stale ul { margin: 6px 0; padding-left: 18px; } #stale p { margin: 6px 0; }
  .frames { display: flex; gap: 6px; margin: 6px 0; } .frame { margin: 0; flex: 1 1 0; min-width: 0; font-size: .75em; color: #9aa; overflow-wrap: anywhere; }
  .frame img { width: 100%; aspect-ratio: 16 / 9; object-fit: contain; background: #000; border-radius: 3px; display: block; }
  .take.stale { border-color: #fb6; } .badge.stale { background: #fb6; } .stale-note { color: #fb6; }
  .tile-film { color: #8cf; } .tile-film.stale { color: #fb6; }
  #film { display: grid; grid-template-columns: minmax(0, 600px) minmax(260px, 1fr); gap: 16px; align-items: start; margin: 10px 0 16px; }
  #film:has(> .film-player:empty) { grid-template-columns: 1fr; } .film-player:empty { display: none; }
  #film video { width: 100%; border-radius: 8px; background: #000; display: block; }
  #chapters { display: flex; flex-wrap: wrap; gap: 6px; padding: 0; margin: 6px 0; list-style: none; } #chapters button { background: #223; }
  .film-status { background: #171a20; border-radius: 8px; padding: 10px 12px; } .film-state { margin: 0 0 8px; }
  .film-state.stale b { color: #fb6; } .film-state.fresh b { color: #8c8; } .changes { margin: 0 0 10px; padding-left: 18px; }
  .scene { display: grid; grid-template-columns: 260px minmax(0, 1fr); gap: 12px; background: #171a20; border: 2px solid transparent; border-radius: 8px; padding: 10px; margin: 10px 0; scroll-margin-top: 10px; }
  .scene.current { border-color: #fd6; } .scene h2 { font-size: 1.05em; margin: 0; } .num { color: #9aa; }
  .facts { color: #bbb; font-size: .85em; margin: 2px 0 6px; }
  .reroll label { display: block; font-size: .85em; color: #bbb; } .reroll .row { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin-top: 6px; }
  .reroll textarea { width: 100%; box-sizing: border-box; background: #0d0f12; color: #eee; border: 1px solid #333; border-radius: 4px; font: inherit; font-size: .9em; }
  .reroll input { width: 3.5em; } .reroll .note { font-size: .85em; color: #f88; }
  .takes { display: flex; gap: 10px; overflow-x: auto; align-items: flex-start; }
  .take { margin: 0; flex: 0 0 240px; background: #1f232b; border-radius: 6px; padding: 6px; border: 2px solid transparent; position: relative; font-size: .85em; }
  .take.chosen { border-color: #8cf; }
  .take video, .take .blank { width: 100%; aspect-ratio: 16 / 9; background: #000; border-radius: 4px; display: block; color: #9aa; text-align: center; }
  .take .preview { position: absolute; left: 6px; top: 6px; width: calc(100% - 12px); aspect-ratio: 16 / 9; pointer-events: none; border-radius: 4px; }
  .take figcaption { margin-top: 4px; } .take[data-status=failed] .status { color: #f88; } .take[data-status=running] .status { color: #fd6; }
  .badge { border-radius: 4px; padding: 0 6px; font-size: .85em; color: #000; } .badge.picked { background: #8cf; } .badge.film { background: #8c8; }
  .prompt { color: #bbb; } .take .line { display: flex; gap: 4px; align-items: center; } .take .pick { margin-left: auto; padding: 2px 10px; }
  @media (max-width: 800px) { #film, .scene { grid-template-columns: 1fr; } }
`;

// Plain browser JavaScript, kept in a string so the page needs no build step. It never builds
// markup from run text: parts arrive drawn (and escaped) by the server.
const SCRIPT = `
const token = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const flash = (text) => { $("flash").textContent = text; };
async function post(path, body) {
  const r = await fetch(path, { method: "POST", headers: { "content-type": "application/json", "x-hailuo-token": token }, body: JSON.stringify(body || {}) });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}
const scenes = () => [...document.querySelectorAll("section.scene")];
let current = Math.max(0, scenes().findIndex((s) => "#" + s.id === decodeURIComponent(location.hash)));
function mark(scroll) {
  const all = scenes();
  current = Math.min(Math.max(current, 0), all.length - 1);
  all.forEach((s, i) => s.classList.toggle("current", i === current));
  document.querySelectorAll("a.tile").forEach((t) => {
    const on = Number(t.dataset.index) === current;
    t.classList.toggle("current", on);
    if (on) t.setAttribute("aria-current", "true"); else t.removeAttribute("aria-current");
  });
  if (scroll && all[current]) all[current].scrollIntoView({ block: "nearest" });
}
function apply(s) {
  for (const [key, p] of Object.entries(s.parts || {})) {
    const el = document.querySelector('[data-part="' + CSS.escape(key) + '"]');
    if (!el || el.dataset.sig === p.sig) continue;
    // A video playing in a part about to be redrawn would stop: the part waits for the pause.
    if ([...el.querySelectorAll("video")].some((v) => !v.paused)) continue;
    el.innerHTML = p.html;
    el.dataset.sig = p.sig;
  }
  mark(false);
}
let latest;
// A page drawn while the folder could not be read has no scenes to fill: the first state redraws it.
function show(s) { if (document.body.dataset.drawn === "no") return location.reload(); latest = s; apply(s); }
document.addEventListener("pause", () => latest && apply(latest), true);
async function pick(scene, take) {
  try { await post("/api/pick", { scene, take }); flash("Picked take " + take + " of " + scene + "."); }
  catch (e) { flash(e.message); }
}
document.addEventListener("click", async (e) => {
  const b = e.target.closest("button, a.tile");
  if (!b || b.disabled) return;
  const section = b.closest("section.scene");
  if (b.matches("a.tile")) { current = Number(b.dataset.index); mark(false); return; }
  if (b.matches("button.pick")) return pick(b.dataset.scene, Number(b.dataset.take));
  if (b.matches("button.chapter")) { $("film-video").currentTime = Number(b.dataset.start); return; }
  if (b.id === "assemble") {
    // Drawn again by the next state whatever it says (the signature no longer matches).
    b.disabled = true; b.textContent = "Assembling…"; b.closest("[data-part]").dataset.sig = "";
    return post("/api/assemble").catch((err) => flash(err.message));
  }
  if (b.matches("button.ask") && section) {
    const form = section.querySelector("form.reroll"), note = form.querySelector(".note"), confirm = form.querySelector("button.confirm");
    const scene = section.dataset.scene, takes = Number(form.elements.takes.value);
    const original = form.elements.prompt.defaultValue.trim(), typed = form.elements.prompt.value.trim();
    const prompt = typed !== original ? typed : undefined;
    note.textContent = "";
    try {
      const q = await post("/api/quote", { scene, takes, prompt });
      confirm.textContent = "Re-roll " + takes + " take(s) for $" + q.usd.toFixed(2);
      confirm.hidden = false;
      confirm.onclick = async () => { confirm.hidden = true; try { await post("/api/reroll", { scene, takes, prompt }); } catch (err) { note.textContent = err.message; } };
    } catch (err) { note.textContent = err.message; }
  }
});
document.addEventListener("submit", (e) => e.preventDefault());
// A click anywhere in a scene makes it the current one (the one 1–9 picks in).
document.addEventListener("pointerdown", (e) => { const s = e.target.closest("section.scene"); if (s) { current = Number(s.dataset.index); mark(false); } });
document.addEventListener("keydown", (e) => {
  if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
  if (e.target.closest && e.target.closest("input, textarea, select, video, [contenteditable]")) return;
  if (["j", "ArrowDown", "ArrowRight"].includes(e.key)) { current++; mark(true); e.preventDefault(); }
  else if (["k", "ArrowUp", "ArrowLeft"].includes(e.key)) { current--; mark(true); e.preventDefault(); }
  else if (/^[1-9]$/.test(e.key)) {
    const section = scenes()[current];
    if (!section) return;
    const card = section.querySelector('figure[data-take="' + e.key + '"]');
    const button = card && card.querySelector("button.pick");
    const name = "Take " + e.key + " of " + section.dataset.scene;
    if (!card) flash(section.dataset.scene + " has no take " + e.key + ".");
    else if (card.classList.contains("chosen")) flash(name + " is already picked.");
    else if (!button || button.disabled) flash(name + " has no clip yet.");
    else pick(section.dataset.scene, Number(e.key));
  }
});
// Animated previews on hover, where the run made them.
document.addEventListener("mouseenter", (e) => {
  const card = e.target.closest && e.target.matches("figure.take[data-preview]") ? e.target : null;
  const v = card && card.querySelector("video");
  if (v && v.paused && !card.querySelector(".preview")) { const img = document.createElement("img"); img.className = "preview"; img.alt = ""; img.src = card.dataset.preview; card.append(img); }
}, true);
document.addEventListener("mouseleave", (e) => { if (e.target.matches && e.target.matches("figure.take")) e.target.querySelectorAll(".preview").forEach((p) => p.remove()); }, true);
document.addEventListener("play", (e) => { const card = e.target.closest("figure.take"); if (card) card.querySelectorAll(".preview").forEach((p) => p.remove()); }, true);
mark(false);
new EventSource("/api/events").addEventListener("state", (e) => show(JSON.parse(e.data)));
`;
