import { execFileSync } from "node:child_process";
import { request } from "node:http";
import { appendFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ReviewActions, ReviewServer, ReviewServerOptions } from "./index.js";
import { startReviewServer, watchFolder, type WatchFolder } from "./index.js";

// The review server over real HTTP on loopback, on a hand-made run folder (one scene, no clips):
// who may read, which files leave the folder, how pages are fed, and what bad numbers answer.
const SECRET = "not for the page";

let root: string;
let runDir: string;
let server: ReviewServer | undefined;
let calls: string[];

const actions: ReviewActions = {
  pick: async (scene, take) => void calls.push(`pick ${scene} ${take}`),
  quote: async (scene, takes) => (calls.push(`quote ${scene} ${takes}`), { usd: takes * 0.27 }),
  reroll: async (scene, takes) => void calls.push(`reroll ${scene} ${takes}`),
  assemble: async () => void calls.push("assemble"),
};

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "hailuo-review-"));
  runDir = join(root, "run");
  await mkdir(join(root, "outside"), { recursive: true });
  await writeFile(join(root, "outside", "secret.txt"), SECRET);
  await mkdir(join(runDir, "clips"), { recursive: true });
  const file = join(runDir, "story.csv");
  const scene = {
    id: "a",
    prompt: "a cat",
    duration: "6",
    prompt_optimizer: true,
    takes: 1,
    tags: [],
    source: { file },
  };
  const manifest = {
    name: "e",
    file,
    format: "csv",
    defaults: { duration: "6", prompt_optimizer: true, takes: 1 },
    vars: {},
    scenes: [scene],
    thumbnails: { posterAt: "auto", sheetColumns: 4, preview: "none" },
  };
  await writeFile(join(runDir, "run.json"), JSON.stringify({ version: 2, manifest }));
  await writeFile(
    join(runDir, "clips", "a.mp4"),
    Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251)),
  );
  calls = [];
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(root, { recursive: true, force: true });
});

async function start(
  extra: Partial<ReviewServerOptions> = {},
): Promise<{ base: string; token: string }> {
  server = await startReviewServer({ runDir, actions, usdPerSecond: 0.045, ...extra });
  return { base: new URL(server.url).origin, token: server.token };
}

/** GET with the path sent exactly as written (fetch would normalise `..`). */
function rawGet(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = request(`${base}${path}`, { headers }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => ok({ status: res.statusCode!, body }));
    });
    req.on("error", fail);
    req.end();
  });
}

const post = (base: string, path: string, body: unknown, token: string) =>
  fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-hailuo-token": token },
    body: JSON.stringify(body),
  });

describe("reads need the token", () => {
  it("refuses the page, state, events and files without a token (401) or with a wrong one (403)", async () => {
    const { base } = await start();
    for (const path of [
      "/",
      "/api/state",
      "/api/events",
      "/files/clips/a.mp4",
      "/files/run.json",
    ]) {
      const none = await rawGet(base, path);
      const wrong = await rawGet(
        base,
        `${path}${path.includes("?") ? "&" : "?"}token=${"0".repeat(32)}`,
        { cookie: `hailuo_review_${new URL(base).port}=${"1".repeat(32)}` },
      );
      expect([path, none.status, wrong.status]).toEqual([path, 401, 403]);
      expect(none.body).not.toContain("a cat");
    }
  });

  it("the tokened page sets an HttpOnly SameSite=Strict cookie that opens state, events and files", async () => {
    const { base, token } = await start();
    const page = await fetch(`${base}/?token=${token}`);
    expect(page.status).toBe(200);
    const cookie = page.headers.get("set-cookie")!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    const jar = cookie.split(";")[0]!;
    const state = await fetch(`${base}/api/state`, { headers: { cookie: jar } });
    expect(state.status).toBe(200);
    expect(((await state.json()) as { name: string }).name).toBe("e");
    const clip = await fetch(`${base}/files/clips/a.mp4`, { headers: { cookie: jar } });
    expect([
      clip.status,
      clip.headers.get("content-type"),
      (await clip.arrayBuffer()).byteLength,
    ]).toEqual([200, "video/mp4", 1000]);
  });

  it("a write still needs the token in its header: the page's cookie does not do", async () => {
    const { base, token } = await start();
    const jar = (await fetch(`${base}/?token=${token}`)).headers.get("set-cookie")!.split(";")[0]!;
    const r = await fetch(`${base}/api/assemble`, { method: "POST", headers: { cookie: jar } });
    expect(r.status).toBe(401);
    expect(calls).toEqual([]);
  });
});

describe("files stay inside the run folder", () => {
  it("a thumbs/ folder linked outside serves nothing, even with the token", async () => {
    await symlink(join(root, "outside"), join(runDir, "thumbs"));
    const { base, token } = await start();
    const r = await rawGet(base, "/files/thumbs/secret.txt", { "x-hailuo-token": token });
    expect(r.status).toBe(404);
    expect(r.body).not.toContain(SECRET);
  });

  it("a file linked outside serves nothing; a link to a file inside is served", async () => {
    await symlink(join(root, "outside", "secret.txt"), join(runDir, "clips", "b.mp4"));
    await symlink(join(runDir, "clips", "a.mp4"), join(runDir, "clips", "c.mp4"));
    const { base, token } = await start();
    const outside = await rawGet(base, "/files/clips/b.mp4", { "x-hailuo-token": token });
    expect([outside.status, outside.body.includes(SECRET)]).toEqual([404, false]);
    const inside = await fetch(`${base}/files/clips/c.mp4`, {
      headers: { "x-hailuo-token": token },
    });
    expect([inside.status, (await inside.arrayBuffer()).byteLength]).toEqual([200, 1000]);
  });

  it("refuses .. written plainly, percent-encoded, or hidden behind an encoded slash", async () => {
    const { base, token } = await start();
    for (const path of [
      "/files/../outside/secret.txt",
      "/files/%2e%2e/outside/secret.txt",
      "/files/clips/%2E%2E/%2e%2e/outside/secret.txt",
      "/files/..%2Foutside%2Fsecret.txt",
      "/files/%2e%2e%2foutside%2fsecret.txt",
      "/files/clips/%00a.mp4",
      "/files/%E0%A4%A",
    ]) {
      const r = await rawGet(base, path, { "x-hailuo-token": token });
      expect([path, r.status, r.body.includes(SECRET)]).toEqual([path, 404, false]);
    }
  });

  it("refuses what is not a regular file: a folder, a FIFO", async () => {
    execFileSync("mkfifo", [join(runDir, "clips", "pipe.mp4")]);
    const { base, token } = await start();
    for (const path of ["/files/clips", "/files/clips/pipe.mp4"]) {
      const r = await rawGet(base, path, { "x-hailuo-token": token });
      expect([path, r.status]).toEqual([path, 404]);
    }
  });

  it("answers a byte range (video seeking) with 206 and exactly those bytes, and 416 past the end", async () => {
    const { base, token } = await start();
    const r = await fetch(`${base}/files/clips/a.mp4`, {
      headers: { "x-hailuo-token": token, range: "bytes=500-509" },
    });
    expect([r.status, r.headers.get("content-range")]).toEqual([206, "bytes 500-509/1000"]);
    expect([...new Uint8Array(await r.arrayBuffer())]).toEqual(
      Array.from({ length: 10 }, (_, i) => (500 + i) % 251),
    );
    const past = await fetch(`${base}/files/clips/a.mp4`, {
      headers: { "x-hailuo-token": token, range: "bytes=1000-" },
    });
    expect([past.status, past.headers.get("content-range")]).toEqual([416, "bytes */1000"]);
  });
});

/** Reads `state` events of one SSE connection. */
function sseClient(base: string, token: string) {
  const abort = new AbortController();
  const states: { busy: boolean }[] = [];
  const waiters: (() => void)[] = [];
  const done = (async () => {
    const r = await fetch(`${base}/api/events`, {
      headers: { "x-hailuo-token": token },
      signal: abort.signal,
    });
    const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      for (let end = buf.indexOf("\n\n"); end >= 0; end = buf.indexOf("\n\n")) {
        const data = buf
          .slice(0, end)
          .split("\n")
          .find((l) => l.startsWith("data: "));
        buf = buf.slice(end + 2);
        if (data) states.push(JSON.parse(data.slice(6)) as { busy: boolean });
        waiters.splice(0).forEach((w) => w());
      }
    }
  })().catch(() => {});
  /** Resolves once a state received so far matches. */
  const until = async (test: (s: { busy: boolean }) => boolean) => {
    while (!states.some(test)) await new Promise<void>((w) => waiters.push(w));
  };
  return { states, until, close: () => (abort.abort(), done) };
}

describe("one watcher feeds every page", () => {
  it("three pages get the same update after a journal append, from one watch that stops when the last leaves", async () => {
    let open = 0;
    let opened = 0;
    let closedAll: () => void = () => {};
    const allClosed = new Promise<void>((r) => (closedAll = r));
    const spy: WatchFolder = (dir, onChange) => {
      open++;
      opened++;
      const w = watchFolder(dir, onChange);
      return { close: () => (w.close(), --open === 0 && closedAll()) };
    };
    const { base, token } = await start({ watchFolder: spy, pollMs: 60_000 });
    const pages = [sseClient(base, token), sseClient(base, token), sseClient(base, token)];
    await Promise.all(pages.map((p) => p.until((s) => !s.busy)));
    expect([open, server!.feedClients]).toEqual([1, 3]);

    // The long poll cannot be what delivers it: the watch on the folder must.
    await appendFile(
      join(runDir, "journal.jsonl"),
      `${JSON.stringify({ t: "enqueued", items: 1, at: new Date().toISOString() })}\n`,
    );
    await Promise.all(pages.map((p) => p.until((s) => s.busy)));
    const seen = pages.map((p) => JSON.stringify(p.states.at(-1)));
    expect(new Set(seen).size).toBe(1);
    expect(opened).toBe(1);

    await Promise.all(pages.map((p) => p.close()));
    await allClosed;
    expect([open, opened]).toEqual([0, 1]);
  });

  it("with no watch at all, the one shared poll still feeds the pages", async () => {
    const { base, token } = await start({ watchFolder: () => ({ close() {} }), pollMs: 50 });
    const page = sseClient(base, token);
    await page.until((s) => !s.busy);
    await appendFile(
      join(runDir, "journal.jsonl"),
      `${JSON.stringify({ t: "enqueued", items: 1, at: new Date().toISOString() })}\n`,
    );
    await page.until((s) => s.busy);
    await page.close();
  });
});

describe("numbers out of range are a 400 naming the field", () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      "/api/quote",
      { scene: "a", takes: 1e21 },
      /takes must be a whole number from 1 to 20, got 1e\+21/,
    ],
    ["/api/quote", { scene: "a", takes: 0 }, /takes must be a whole number from 1 to 20/],
    ["/api/quote", { scene: "a", takes: 2.5 }, /takes must be a whole number from 1 to 20/],
    [
      "/api/quote",
      { scene: "a", takes: "3" },
      /takes must be a whole number from 1 to 20, got "3"/,
    ],
    ["/api/reroll", { scene: "a", takes: 1e9 }, /takes must be a whole number from 1 to 20/],
    ["/api/reroll", { scene: "a", takes: -1 }, /takes must be a whole number from 1 to 20/],
    ["/api/pick", { scene: "a", take: 1.5 }, /take must be a whole number from 1 to 100000/],
    ["/api/pick", { scene: "a", take: 1e21 }, /take must be a whole number from 1 to 100000/],
    ["/api/pick", { scene: "a" }, /take must be a whole number from 1 to 100000, got nothing/],
    ["/api/pick", { take: 1 }, /scene must be a non-empty string/],
    ["/api/reroll", { scene: 7, takes: 1 }, /scene must be a non-empty string/],
  ];
  it.each(cases)("%s %j", async (path, body, message) => {
    const { base, token } = await start();
    const r = await post(base, path, body, token);
    const answer = (await r.json()) as { error: string; code: string };
    expect([r.status, answer.code]).toEqual([400, "usage"]);
    expect(answer.error).toMatch(message);
    expect(calls).toEqual([]);
  });

  it("in-range requests reach the actions", async () => {
    const { base, token } = await start();
    expect(await (await post(base, "/api/quote", { scene: "a", takes: 20 }, token)).json()).toEqual(
      { usd: 20 * 0.27 },
    );
    expect((await post(base, "/api/pick", { scene: "a", take: 1 }, token)).status).toBe(200);
    expect(calls).toEqual(["quote a 20", "pick a 1"]);
  });
});
