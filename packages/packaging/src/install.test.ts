// The packages as a user gets them: every public package packed once, the tarballs installed with
// npm into an empty project outside the monorepo, then used only through that project's
// node_modules (its bins through npx, its modules through import and require, its types via tsc).
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeErrors, ffprobeFacts, makeTempDir } from "@hailuo/test-utils";
import { checkTarball, packPublicPackages, type PackedPackage } from "./packages.js";

const run = promisify(execFile);
let root: { dir: string; cleanup: () => Promise<void> };
let app: string;
let packed: PackedPackage[];

// What a user's shell has: no pnpm/npm script variables from the test runner, no fal settings.
const userEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(npm_|pnpm_|PNPM_|INIT_CWD$|FAL_|VITEST|NODE_OPTIONS$)/.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
};

const npx = (args: string[], extra: Record<string, string> = {}) =>
  run("npx", ["--no", "--", ...args], { cwd: app, env: userEnv(extra), maxBuffer: 32 << 20 });

beforeAll(async () => {
  root = await makeTempDir("hailuo-packaging-");
  const tgz = join(root.dir, "tgz");
  app = join(root.dir, "app");
  await mkdir(tgz);
  await mkdir(app);
  let t = Date.now();
  packed = await packPublicPackages(tgz);
  const packMs = Date.now() - t;
  await writeFile(
    join(app, "package.json"),
    JSON.stringify({ name: "hailuo-consumer", private: true, type: "module" }),
  );
  t = Date.now();
  // One install of every tarball, from npm's cache when it has the registry's packages.
  const tarballs = packed.map((p) => join("..", "tgz", p.tarball.slice(tgz.length + 1)));
  await run(
    "npm",
    ["install", "--prefer-offline", "--no-audit", "--no-fund", ...tarballs, "@types/node@^20.19"],
    {
      cwd: app,
      env: userEnv(),
      maxBuffer: 32 << 20,
    },
  );
  console.log(
    `packed ${packed.length} packages in ${packMs} ms; npm install took ${Date.now() - t} ms`,
  );
}, 240_000);

afterAll(async () => {
  await root?.cleanup();
});

describe("the packed packages", () => {
  it("pass publint and arethetypeswrong, with README, LICENSE and metadata, in every tarball", async () => {
    const problems: string[] = [];
    for (const p of packed)
      problems.push(...(await checkTarball(p.tarball)).map((line) => `${p.name}: ${line}`));
    expect(problems).toEqual([]);
  }, 120_000);

  it("install with npm alone: every @hailuo package resolves to its tarball, none from the registry", async () => {
    const lock = JSON.parse(await readFile(join(app, "package-lock.json"), "utf8")) as {
      packages: Record<string, { resolved?: string; version?: string }>;
    };
    const hailuo = Object.entries(lock.packages).filter(([path]) =>
      path.startsWith("node_modules/@hailuo/"),
    );
    expect(hailuo.map(([path]) => path.slice("node_modules/".length)).sort()).toEqual(
      packed.map((p) => p.name).sort(),
    );
    for (const [path, entry] of hailuo) expect(entry.resolved ?? "", path).toMatch(/^file:/);
  });
});

describe("npx hailuo", () => {
  it("run: a two-scene manifest on the embedded emulator makes a film of both clips", async () => {
    await writeFile(
      join(app, "two.yaml"),
      [
        "name: two",
        "defaults:",
        "  duration: 6",
        "scenes:",
        "  - id: kite",
        '    prompt: "A red kite over a green hill, packed CLI test"',
        "  - id: boat",
        '    prompt: "A blue boat on a calm lake, packed CLI test"',
        "assemble: true",
        "",
      ].join("\n"),
    );
    const { stdout } = await npx(["hailuo", "run", "two.yaml", "--json", "--yes"]);
    const events = stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; [k: string]: unknown });
    const summary = events.find((e) => e.type === "summary") as unknown as {
      exitCode: number;
      totals: Record<string, number>;
    };
    expect(summary.exitCode).toBe(0);
    expect(summary.totals, "both scenes done, each paid once").toMatchObject({
      done: 2,
      billedRequests: 2,
      billedSeconds: 12,
    });
    const film = events.find((e) => e.type === "media_done")?.film as string | undefined;
    expect(film, "the run reports a film").toBeTruthy();
    const path = join(app, film!.startsWith("/") ? film!.slice(app.length + 1) : film!);
    expect(await decodeErrors(path)).toBe("");
    expect((await ffprobeFacts(path)).durationS).toBeCloseTo(12, 0);
  }, 120_000);

  it("hailuo-emulator: the emulator's own bin answers fal's queue API", async () => {
    const emu = await startServer(["hailuo-emulator", "--port", "0", "--latency-ms", "100"]);
    try {
      const res = await fetch(
        `${emu.url}/__host/queue.fal.run/fal-ai/minimax/hailuo-02/standard/text-to-video`,
        {
          method: "POST",
          headers: { authorization: "Key emulator-key", "content-type": "application/json" },
          body: JSON.stringify({ prompt: "A lighthouse, packed emulator bin test" }),
        },
      );
      expect(res.status).toBe(200);
      expect(((await res.json()) as { request_id?: string }).request_id).toMatch(/\S/);
    } finally {
      await emu.stop();
    }
  }, 30_000);
});

describe("@hailuo/core from a user's code, against `npx hailuo emulator`", () => {
  let emu: Server;
  beforeAll(async () => {
    emu = await startServer(["hailuo", "emulator", "--port", "0", "--latency-ms", "200"]);
  }, 30_000);
  afterAll(async () => {
    await emu?.stop();
  });

  const body = `const client = createHailuoClient();
const { handle, output } = await client.generate({ prompt: process.argv[2], duration: "6" });
const saved = await downloadVideo(output.video.url, process.argv[3]);
console.log(JSON.stringify({ requestId: handle.requestId, bytes: saved.bytes, usingEmulator: client.usingEmulator }));`;
  const esm = `import { createHailuoClient, downloadVideo } from "@hailuo/core";\n${body}\n`;
  const cjs = `const { createHailuoClient, downloadVideo } = require("@hailuo/core");\n(async () => {\n${body}\n})();\n`;

  it.each([
    ["ESM (import)", "esm.mjs", esm],
    ["CommonJS (require)", "cjs.cjs", cjs],
  ])(
    "%s generates and downloads a clip",
    async (_kind, file, source) => {
      await writeFile(join(app, file), source);
      const submitsBefore = (await emu.stats()).submits.total;
      const out = join(app, `${file}.mp4`);
      const { stdout } = await run(
        process.execPath,
        [file, `A paper boat, packed core test ${file}`, out],
        {
          cwd: app,
          env: userEnv({ FAL_EMULATOR_URL: emu.url }),
        },
      );
      const said = JSON.parse(stdout.trim().split("\n").pop()!) as {
        bytes: number;
        usingEmulator: boolean;
      };
      expect(said.usingEmulator).toBe(true);
      expect((await emu.stats()).submits.total - submitsBefore, "one submit").toBe(1);
      expect(await decodeErrors(out)).toBe("");
      expect((await ffprobeFacts(out)).durationS).toBeCloseTo(6, 0);
    },
    60_000,
  );
});

describe("the types a user's tsc sees", () => {
  const consumerTs = `import { createHailuoClient, HailuoError, type HailuoInputLike } from "@hailuo/core";
import { createEmulator } from "@hailuo/emulator";
import type { HailuoEvent } from "@hailuo/cli/events";

const input: HailuoInputLike = { prompt: "A fox in the snow", duration: 10 };
// @ts-expect-error 8 s is not a length the endpoint renders
export const wrong: HailuoInputLike = { prompt: "A fox", duration: 8 };

export async function clipUrl(): Promise<string> {
  const emu = await createEmulator({ port: 0 });
  const client = createHailuoClient({ emulatorUrl: emu.url });
  const { output } = await client.generate(input);
  await emu.close();
  return output.video.url;
}

export function describeFailure(error: unknown, last: HailuoEvent): string {
  return error instanceof HailuoError ? \`\${error.code} (retryable: \${error.retryable}) after \${last.type}\` : last.type;
}
`;
  const tsc = join(
    createRequire(import.meta.url).resolve("typescript/package.json"),
    "..",
    "bin",
    "tsc",
  );

  it.each([
    ["node16", { module: "node16", moduleResolution: "node16" }],
    ["bundler", { module: "preserve", moduleResolution: "bundler" }],
  ])(
    "a consumer type-checks under moduleResolution %s, and duration 8 does not",
    async (name, resolution) => {
      await writeFile(join(app, "consumer.ts"), consumerTs);
      const config = {
        compilerOptions: {
          ...resolution,
          target: "es2022",
          strict: true,
          noEmit: true,
          types: ["node"],
          skipLibCheck: false,
        },
        files: ["consumer.ts"],
      };
      await writeFile(join(app, `tsconfig.${name}.json`), JSON.stringify(config));
      const result = await run(process.execPath, [tsc, "-p", `tsconfig.${name}.json`], {
        cwd: app,
      }).then(
        () => "",
        (e: { stdout?: string; message: string }) => e.stdout || e.message,
      );
      expect(result).toBe("");
    },
    60_000,
  );
});

interface Server {
  url: string;
  stats: () => Promise<{ submits: { total: number } }>;
  stop: () => Promise<void>;
}

/** Starts a server bin through npx in its own process group and reads the URL it prints. */
async function startServer(args: string[]): Promise<Server> {
  const child: ChildProcess = spawn("npx", ["--no", "--", ...args], {
    cwd: app,
    env: userEnv(),
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /^(http:\/\/\S+)$/m.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once("exit", (code) =>
      reject(new Error(`${args.join(" ")} exited (${code}) before printing a URL: ${stderr}`)),
    );
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    url,
    stats: async () =>
      (await fetch(`${url}/__emulator/stats`)).json() as Promise<{ submits: { total: number } }>,
    stop: async () => {
      // The group: npx and the node process it started.
      if (child.exitCode === null) process.kill(-child.pid!, "SIGINT");
      await exited;
    },
  };
}
