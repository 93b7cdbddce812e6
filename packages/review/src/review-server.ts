import { randomBytes, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { serve, type ServerType } from "@hono/node-server";
import { serveStatic } from "@hono/node-server/serve-static";
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { insideDir } from "@hailuo/runner";
import { HailuoError } from "@hailuo/shared";
import { reviewPage } from "./review-page.js";
import { folderSignature, reviewState, type ReviewState } from "./review-state.js";

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
  /** Every write must carry it. @default 32 random hex characters */
  token?: string;
  /** How often the run folder is looked at for changes. @default 300 */
  pollMs?: number;
}

/** A running review server. */
export interface ReviewServer {
  /** The page's address, token included. */
  url: string;
  token: string;
  close(): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

/**
 * Serves the review page of a run folder: live state over server-sent events (fed from the
 * journal), the clips and posters, and POST actions guarded by a token. No CORS: other origins
 * cannot read it, and the token header makes their writes fail.
 */
export async function startReviewServer(options: ReviewServerOptions): Promise<ReviewServer> {
  const runDir = resolve(options.runDir);
  const token = options.token ?? randomBytes(16).toString("hex");
  const host = options.host ?? "127.0.0.1";
  const jobs: ReviewState["jobs"] = [];
  let nextJob = 1;
  const state = () => reviewState(runDir, options.usdPerSecond, jobs.slice(-8));
  const listeners = new Set<() => void>();
  const changed = () => listeners.forEach((l) => l());

  const app = new Hono();
  let port = 0;
  // A page on a loopback address answers only to loopback host names (no DNS rebinding).
  app.use("*", async (c, next) => {
    const name = (c.req.header("host") ?? "").replace(/:\d+$/, "");
    if (LOOPBACK.has(host) && !LOOPBACK.has(name)) return c.text("forbidden host", 403);
    return next();
  });
  app.use("/api/*", async (c, next) => {
    if (c.req.method !== "POST") return next();
    const given = Buffer.from(c.req.header("x-hailuo-token") ?? "");
    const want = Buffer.from(token);
    if (given.length !== want.length || !timingSafeEqual(given, want)) return c.json({ error: "a write needs the page's token" }, 403);
    return next();
  });

  app.get("/", (c) => c.html(reviewPage()));
  app.get("/api/state", async (c) => c.json(await state()));
  app.get("/api/events", (c) =>
    streamSSE(c, async (stream) => {
      let last = "";
      let wake: () => void = () => {};
      const onChange = () => wake();
      listeners.add(onChange);
      stream.onAbort(() => void listeners.delete(onChange));
      while (!stream.aborted) {
        const sig = `${await folderSignature(runDir)}#${JSON.stringify(jobs)}`;
        if (sig !== last) {
          last = sig;
          await stream.writeSSE({ event: "state", data: JSON.stringify(await state()) });
        }
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, options.pollMs ?? 300);
        });
      }
    }),
  );

  const body = async (c: { req: { json(): Promise<unknown> } }) => ((await c.req.json().catch(() => ({}))) ?? {}) as { scene?: string; take?: number; takes?: number; prompt?: string };
  const fail = (error: unknown) => ({ error: error instanceof Error ? error.message : String(error), code: error instanceof HailuoError ? error.code : "internal" });
  // Long actions answer at once and run on; the page follows them in `jobs` and the journal.
  const background = (what: string, work: () => Promise<void>) => {
    const job: ReviewState["jobs"][number] = { id: nextJob++, what, state: "running" };
    jobs.push(job);
    changed();
    work().then(
      () => Object.assign(job, { state: "ok" }),
      (error) => Object.assign(job, { state: "failed", message: fail(error).error }),
    ).finally(changed);
    return job;
  };

  app.post("/api/pick", async (c) => {
    const b = await body(c);
    try {
      await options.actions.pick(String(b.scene), Number(b.take));
      changed();
      return c.json({ ok: true });
    } catch (error) {
      return c.json(fail(error), 400);
    }
  });
  app.post("/api/quote", async (c) => {
    const b = await body(c);
    try {
      return c.json(await options.actions.quote(String(b.scene), Number(b.takes ?? 1), b.prompt || undefined));
    } catch (error) {
      return c.json(fail(error), 400);
    }
  });
  app.post("/api/reroll", async (c) => {
    const b = await body(c);
    const takes = Number(b.takes ?? 1);
    return c.json(background(`re-roll ${b.scene} ×${takes}`, () => options.actions.reroll(String(b.scene), takes, b.prompt || undefined)), 202);
  });
  app.post("/api/assemble", (c) => c.json(background("assemble", () => options.actions.assemble()), 202));

  // The run folder's media, read-only; a path can never leave the folder.
  app.use(
    "/files/*",
    async (c, next) => {
      try {
        insideDir(runDir, decodeURIComponent(c.req.path.slice("/files/".length)));
      } catch {
        return c.text("not found", 404);
      }
      return next();
    },
    serveStatic({ root: runDir, rewriteRequestPath: (p) => p.slice("/files".length) }),
  );

  const server: ServerType = await new Promise((ok) => {
    const s = serve({ fetch: app.fetch, hostname: host, port: options.port ?? 0 }, () => ok(s));
  });
  port = (server.address() as AddressInfo).port;
  const shown = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/?token=${token}`,
    token,
    close: () =>
      new Promise<void>((ok) => {
        listeners.forEach((l) => l());
        server.close(() => ok());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}
