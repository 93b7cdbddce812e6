/**
 * The review page: one static document whose script draws everything from /api/state and the
 * /api/events stream. Text from the run (prompts, errors) only ever reaches the page through
 * `textContent`, never as markup.
 */
export function reviewPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hailuo review</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1 id="name">…</h1><p id="totals" class="meta"></p><p id="jobs" class="meta"></p></header>
<section id="film" hidden>
  <video id="film-video" controls preload="metadata"></video>
  <ol id="chapters"></ol>
</section>
<p><button id="assemble">Assemble the film</button></p>
<main id="scenes"></main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

const STYLE = `
  :root { color-scheme: dark; font-family: system-ui, sans-serif; background: #0d0f12; color: #e8e8e8; }
  body { margin: 0 auto; max-width: 1280px; padding: 20px; } h1 { margin: 0; } .meta { color: #9aa; margin: 4px 0; }
  button { background: #2b6cb0; color: #fff; border: 0; border-radius: 5px; padding: 6px 12px; cursor: pointer; } button:disabled { background: #333; color: #888; cursor: default; }
  #film video { width: 100%; border-radius: 8px; background: #000; } #chapters { display: flex; flex-wrap: wrap; gap: 6px; padding: 0; list-style: none; }
  #chapters button { background: #223; }
  .scene { background: #171a20; border-radius: 8px; padding: 12px; margin: 14px 0; } .scene h2 { font-size: 1.05em; margin: 0 0 4px; }
  .takes { display: flex; gap: 12px; overflow-x: auto; padding: 8px 0; }
  .take { margin: 0; flex: 0 0 300px; background: #1f232b; border-radius: 6px; padding: 8px; border: 2px solid transparent; position: relative; }
  .take.chosen { border-color: #8cf; } .take video, .take .blank { width: 100%; aspect-ratio: 1366 / 768; background: #000; border-radius: 4px; display: block; }
  .take .preview { position: absolute; left: 8px; top: 8px; width: calc(100% - 16px); aspect-ratio: 1366 / 768; pointer-events: none; border-radius: 4px; }
  .status { font-size: .85em; } .take[data-status=failed] .status { color: #f88; } .take[data-status=running] .status { color: #fd6; } .badge { background: #8cf; color: #000; border-radius: 4px; padding: 0 6px; font-size: .8em; }
  .prompt { font-size: .85em; color: #bbb; } textarea { width: 100%; min-height: 3.2em; background: #0d0f12; color: #eee; border: 1px solid #333; border-radius: 4px; }
  .reroll { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; } .reroll input { width: 3.5em; } .error { color: #f88; }
`;

// Plain browser JavaScript, kept in a string so the page needs no build step.
const SCRIPT = `
const token = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...kids) => { const e = Object.assign(document.createElement(tag), props); for (const k of kids) e.append(k); return e; };
const file = (rel) => "/files/" + rel.split("/").map(encodeURIComponent).join("/");
const money = (usd) => "$" + usd.toFixed(2);
const clock = (s) => { s = Math.round(s); return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"); };
async function post(path, body) {
  const r = await fetch(path, { method: "POST", headers: { "content-type": "application/json", "x-hailuo-token": token }, body: JSON.stringify(body || {}) });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}
const built = new Map();
function sceneBox(scene) {
  if (built.has(scene.id)) return built.get(scene.id);
  const takes = el("div", { className: "takes" });
  const prompt = el("textarea", { value: scene.prompt, name: "prompt" });
  const count = el("input", { type: "number", min: 1, max: 8, value: 1, name: "takes" });
  const ask = el("button", { textContent: "Re-roll…", className: "ask" });
  const confirm = el("button", { textContent: "", className: "confirm", hidden: true });
  const note = el("span", { className: "note" });
  ask.onclick = async () => {
    note.textContent = "";
    try {
      const edited = prompt.value.trim() !== scene.prompt ? prompt.value.trim() : undefined;
      const q = await post("/api/quote", { scene: scene.id, takes: Number(count.value), prompt: edited });
      confirm.textContent = "Re-roll " + count.value + " take(s) for " + money(q.usd);
      confirm.hidden = false;
      confirm.onclick = async () => { confirm.hidden = true; try { await post("/api/reroll", { scene: scene.id, takes: Number(count.value), prompt: edited }); } catch (e) { note.textContent = e.message; } };
    } catch (e) { note.textContent = e.message; }
  };
  const box = el("section", { className: "scene" }, el("h2", { textContent: scene.id }), takes, el("div", { className: "reroll" }, prompt, count, ask, confirm, note));
  box.dataset.scene = scene.id;
  $("scenes").append(box);
  const entry = { box, takes };
  built.set(scene.id, entry);
  return entry;
}
function takeCard(scene, t) {
  const card = el("figure", { className: "take" + (t.chosen ? " chosen" : "") });
  card.dataset.take = t.take; card.dataset.status = t.status;
  if (t.clip) {
    const v = el("video", { controls: true, preload: "metadata", src: file(t.clip) });
    if (t.poster) v.poster = file(t.poster);
    card.append(v);
    if (t.preview) {
      card.onmouseenter = () => { if (v.paused) card.append(el("img", { className: "preview", src: file(t.preview), alt: "" })); };
      card.onmouseleave = () => card.querySelectorAll(".preview").forEach((p) => p.remove());
      v.onplay = () => card.querySelectorAll(".preview").forEach((p) => p.remove());
    }
  } else card.append(el("div", { className: "blank" }));
  const pick = el("button", { textContent: t.chosen ? "In the film" : "Pick", className: "pick", disabled: t.chosen || !t.clip });
  pick.onclick = () => post("/api/pick", { scene: scene.id, take: t.take }).catch((e) => alert(e.message));
  card.append(
    el("figcaption", {},
      el("b", { textContent: "take " + t.take + " " }), t.chosen ? el("span", { className: "badge", textContent: "chosen" }) : "",
      el("div", { className: "status", textContent: t.status + (t.costUsd ? " · " + money(t.costUsd) : "") }),
      t.prompt !== scene.prompt ? el("div", { className: "prompt", textContent: "prompt: " + t.prompt }) : "",
      t.error ? el("div", { className: "error", textContent: t.error }) : "",
      pick));
  return card;
}
let filmMade = "";
function render(s) {
  $("name").textContent = s.name;
  const t = s.totals;
  $("totals").textContent = t.done + "/" + t.clips + " done · " + t.running + " running · " + t.waiting + " waiting · " + t.failed + " failed · " + (s.amounts === "emulated" ? "emulated, nothing billed (" + money(t.billedUsd) + " at fal's price)" : money(t.billedUsd) + " billed") +
    (s.elapsedS !== undefined ? " · " + clock(s.elapsedS) + " elapsed" : "") + (s.etaS !== undefined ? " · ETA " + clock(s.etaS) : "");
  $("jobs").textContent = s.jobs.map((j) => j.what + ": " + j.state + (j.message ? " (" + j.message + ")" : "")).join(" · ");
  $("assemble").disabled = s.jobs.some((j) => j.state === "running" && j.what === "assemble");
  for (const scene of s.scenes) {
    const { takes } = sceneBox(scene);
    const sig = JSON.stringify(scene.takes);
    if (takes.dataset.sig === sig) continue;
    takes.dataset.sig = sig;
    takes.replaceChildren(...scene.takes.map((tk) => takeCard(scene, tk)));
  }
  if (s.film && s.film.madeAt !== filmMade) {
    filmMade = s.film.madeAt;
    $("film").hidden = false;
    const v = $("film-video");
    v.replaceChildren(el("track", { kind: "chapters", default: true, src: file(s.film.file + ".chapters.vtt") + "?v=" + encodeURIComponent(filmMade) }));
    v.src = file(s.film.file) + "?v=" + encodeURIComponent(filmMade);
    $("chapters").replaceChildren(...s.film.chapters.map((c) => el("li", {}, Object.assign(el("button", { textContent: c.scene + (c.take ? " · take " + c.take : ""), className: "chapter" }), { onclick: () => { v.currentTime = c.startS; } }))));
  }
}
$("assemble").onclick = () => post("/api/assemble").catch((e) => alert(e.message));
fetch("/api/state").then((r) => r.json()).then(render);
new EventSource("/api/events").addEventListener("state", (e) => render(JSON.parse(e.data)));
`;
