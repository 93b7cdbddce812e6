import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { realpath } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { Readable } from "node:stream";
import { serve, type ServerType } from "@hono/node-server";
import { Hono, type Context } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { streamSSE } from "hono/streaming";
import { HailuoError } from "@hailuo/shared";
import { pickRequest, rerollRequest, type RerollRequest } from "./review-input.js";
import { FAVICON_SVG, reviewPage } from "./review-page.js";
import { reviewParts } from "./review-view.js";
import { folderSignature, reviewState, type ReviewState } from "./review-state.js";
import { byteRange, contentType, filePathOf, openRunFile } from "./run-files.js";
import { createStateFeed, watchFolder, type WatchFolder } from "./state-feed.js";

/**
 * What the page's buttons do. The CLI passes its own commands here (pick, reroll, assemble), so a
 * click and the command line go through exactly the same code, journal and budget.
 */
export interface ReviewActions {
  pick(scene: string, take: number): Promise<void>;
  /** What a re-roll would cost, before anyone confirms it. */
  quote(scene: string, takes: number, prompt?: string): Promise<{ usd: number }>;
  /** Starts a re-roll; resolves when it has finished (the page follows it through the journal). */
  reroll(scene: string, takes: number, prompt?: string): Promise<void>;
  assemble(): Promise<void>;
}

/** Options of `startReviewServer`. */
export interface ReviewServerOptions {
  runDir: string;
  actions: ReviewActions;
  /** Price per second for the cost shown next to a re-roll. */
  usdPerSecond: number;
  /** @default "127.0.0.1": the page can spend money, so only this machine may reach it */
  host?: string;
  /** @default 0 (any free port) */
  port?: number;
  /** Every read and write must carry it. @default 32 random hex characters */
  token?: string;
  /** The poll behind the folder watch, shared by every open page. @default 1000 */
  pollMs?: number;
  /** Starts the one watch on the run folder (tests pass a spy). @default `fs.watch` */
  watchFolder?: WatchFolder;
  /** How the page's commands name the run: a bucket run's `s3://` address. @default the folder */
  runAddress?: string;
}

/** A running review server. */
export interface ReviewServer {
  /** The page's address, token included. */
  url: string;
  token: string;
  /** Pages connected to the live feed now. */
  readonly feedClients: number;
  close(): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);
const digest = (s: string) => createHash("sha256").update(s).digest();

/**
 * Serves the review page of a run folder: live state over server-sent events (one watcher on the
 * journal's folder for every page), the clips and posters, and POST actions. Every request needs
 * the token: a write in its header, a read in the header, the query or the cookie the page's
 * tokened address sets. No CORS: other origins cannot read it, and the token header makes their
 * writes fail.
 */
export async function startReviewServer(options: ReviewServerOptions): Promise<ReviewServer> {
  const runDir = resolve(options.runDir);
  // Files are checked against the folder's real path: a run folder reached through a link works.
  const runReal = await realpath(runDir);
  const token = options.token ?? randomBytes(16).toString("hex");
  const host = options.host ?? "127.0.0.1";
  const jobs: ReviewState["jobs"] = [];
  let nextJob = 1;
  const state = () => reviewState(runDir, options.usdPerSecond, jobs.slice(-8), options.runAddress);
  const feed = createStateFeed({
    dir: runDir,
    signature: async () => `${await folderSignature(runDir)}#${JSON.stringify(jobs)}`,
    // The parts go along, drawn once per change for every page.
    payload: async () => {
      const s = await state();
      return JSON.stringify({ ...s, parts: reviewParts(s) });
    },
    pollMs: options.pollMs ?? 1000,
    watchFolder: options.watchFolder ?? watchFolder,
  });
  const changed = () => feed.poke();
  const streams = new Set<() => void>();

  const app = new Hono();
  let port = 0;
  // Per port: two review servers on this machine share cookies, not tokens.
  const cookieName = () => `hailuo_review_${port}`;
  const want = digest(token);
  // Digests have one length, so the comparison takes the same time whatever was sent.
  const matches = (given: string | undefined) =>
    given !== undefined && timingSafeEqual(digest(given), want);

  // A page on a loopback address answers only to loopback host names (no DNS rebinding).
  app.use("*", async (c, next) => {
    const name = (c.req.header("host") ?? "").replace(/:\d+$/, "");
    if (LOOPBACK.has(host) && !LOOPBACK.has(name)) return c.text("forbidden host", 403);
    return next();
  });
  app.use("*", async (c, next) => {
    const read = c.req.method === "GET" || c.req.method === "HEAD";
    // A write carries the header only: a cookie would ride along on a forged form post.
    const given = read
      ? [c.req.header("x-hailuo-token"), c.req.query("token"), getCookie(c, cookieName())]
      : [c.req.header("x-hailuo-token")];
    const sent = given.filter((g) => g !== undefined);
    if (!sent.length)
      return c.json(
        { error: "this page needs its token: open the address `hailuo review` printed" },
        401,
      );
    if (!sent.some(matches))
      return c.json(
        {
          error: read
            ? "wrong token: open the address `hailuo review` printed"
            : "a write needs the page's token",
        },
        403,
      );
    return next();
  });

  app.get("/", async (c) => {
    // The tokened address leaves a cookie, so the page's own media, state and events need no token in their URLs.
    if (matches(c.req.query("token")))
      setCookie(c, cookieName(), token, { httpOnly: true, sameSite: "Strict", path: "/" });
    c.header("Referrer-Policy", "no-referrer");
    c.header("Cache-Control", "no-store");
    // Drawn here, so the page reads without its script; a folder caught mid-change still gets
    // the page, and the live feed draws it a moment later.
    let drawn: ReviewState | undefined;
    let error: string | undefined;
    for (let attempt = 1; !drawn && attempt <= 3; attempt++) {
      try {
        drawn = await state();
      } catch (e) {
        error = `the run could not be read: ${fail(e).error}`;
      }
    }
    if (drawn) error = undefined;
    const nonce = randomBytes(16).toString("base64");
    // Defence in depth behind the escaping: only the page's own script runs, media only from here.
    c.header(
      "Content-Security-Policy",
      `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; ` +
        "img-src 'self' data:; media-src 'self'; connect-src 'self'; base-uri 'none'; " +
        "form-action 'none'; frame-ancestors 'none'",
    );
    return c.html(reviewPage(drawn, { nonce, ...(error ? { error } : {}) }));
  });
  // Browsers ask for it whatever the page says; answered rather than a 404 in the console.
  app.get("/favicon.ico", (c) => {
    c.header("Content-Type", "image/svg+xml");
    c.header("Cache-Control", "max-age=86400");
    return c.body(FAVICON_SVG);
  });
  app.get("/api/state", async (c) => c.json(await state()));
  app.get("/api/events", (c) =>
    streamSSE(c, async (stream) => {
      let pending: string | undefined;
      let wake = () => {};
      const leave = feed.join((data) => {
        pending = data;
        wake();
      });
      const end = () => {
        leave();
        wake();
      };
      streams.add(end);
      stream.onAbort(end);
      try {
        while (!stream.aborted && streams.has(end)) {
          if (pending === undefined) {
            await new Promise<void>((r) => (wake = r));
            continue;
          }
          const data = pending;
          pending = undefined;
          await stream.writeSSE({ event: "state", data });
        }
      } finally {
        streams.delete(end);
        leave();
      }
    }),
  );

  const fail = (error: unknown) => ({
    error: error instanceof Error ? error.message : String(error),
    code: error instanceof HailuoError ? error.code : "internal",
  });
  // Our errors are the asker's to fix (400); anything else is ours (500).
  const refuse = (c: Context, error: unknown) =>
    c.json(fail(error), error instanceof HailuoError ? 400 : 500);
  const body = async (c: Context): Promise<Record<string, unknown>> => {
    const b: unknown = await c.req.json().catch(() => ({}));
    return b !== null && typeof b === "object" && !Array.isArray(b)
      ? (b as Record<string, unknown>)
      : {};
  };
  // Long actions answer at once and run on; the page follows them in `jobs` and the journal.
  const background = (what: string, work: () => Promise<void>) => {
    const job: ReviewState["jobs"][number] = { id: nextJob++, what, state: "running" };
    jobs.push(job);
    changed();
    work()
      .then(
        () => Object.assign(job, { state: "ok" }),
        (error) => Object.assign(job, { state: "failed", message: fail(error).error }),
      )
      .finally(changed);
    return job;
  };

  app.post("/api/pick", async (c) => {
    try {
      const { scene, take } = pickRequest(await body(c));
      await options.actions.pick(scene, take);
      changed();
      return c.json({ ok: true });
    } catch (error) {
      return refuse(c, error);
    }
  });
  app.post("/api/quote", async (c) => {
    try {
      const r = rerollRequest(await body(c));
      return c.json(await options.actions.quote(r.scene, r.takes, r.prompt));
    } catch (error) {
      return refuse(c, error);
    }
  });
  app.post("/api/reroll", async (c) => {
    let r: RerollRequest;
    try {
      r = rerollRequest(await body(c));
    } catch (error) {
      return refuse(c, error);
    }
    return c.json(
      background(`re-roll ${r.scene} ×${r.takes}`, () =>
        options.actions.reroll(r.scene, r.takes, r.prompt),
      ),
      202,
    );
  });
  app.post("/api/assemble", (c) =>
    c.json(
      background("assemble", () => options.actions.assemble()),
      202,
    ),
  );

  // The run folder's media, read-only: only regular files whose real path is inside the folder.
  app.get("/files/*", async (c) => {
    const names = filePathOf(new URL(c.req.url).pathname.slice("/files/".length));
    const file = names && (await openRunFile(runReal, names));
    if (!file) return c.text("not found", 404);
    const { handle, info } = file;
    c.header("Content-Type", contentType(names.at(-1)!));
    // Run files are data, never pages of this origin: no sniffing, and a sandbox if one is opened.
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Content-Security-Policy", "sandbox");
    c.header("Last-Modified", info.mtime.toUTCString());
    c.header("Accept-Ranges", "bytes");
    const range = byteRange(c.req.header("range"), info.size);
    if (c.req.method === "HEAD" || range === undefined) {
      await handle.close();
      if (range === undefined) c.header("Content-Range", `bytes */${info.size}`);
      else c.header("Content-Length", String(info.size));
      return c.body(null, range === undefined ? 416 : 200);
    }
    const { start, end } = range === "all" ? { start: 0, end: info.size - 1 } : range;
    c.header("Content-Length", String(end - start + 1));
    if (range !== "all") c.header("Content-Range", `bytes ${start}-${end}/${info.size}`);
    if (end < start) {
      await handle.close();
      return c.body(null, 200);
    }
    const stream = Readable.toWeb(
      handle.createReadStream({ start, end }),
    ) as ReadableStream<Uint8Array>;
    return c.body(stream, range === "all" ? 200 : 206);
  });

  const server: ServerType = await new Promise((ok) => {
    const s = serve({ fetch: app.fetch, hostname: host, port: options.port ?? 0 }, () => ok(s));
  });
  port = (server.address() as AddressInfo).port;
  const shown = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/?token=${token}`,
    token,
    get feedClients() {
      return feed.clients;
    },
    close: () =>
      new Promise<void>((ok) => {
        for (const end of [...streams]) {
          streams.delete(end);
          end();
        }
        server.close(() => ok());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}
