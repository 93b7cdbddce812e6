import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, onTestFinished } from "vitest";
import type { Emulator, EmulatorOptions } from "@hailuo/emulator";
import { makeTempDir, startTestEmulator } from "@hailuo/test-utils";

// The built CLI as a real process, against an emulator in this test process (so its counters
// survive the CLI being killed).
export const BIN = join(import.meta.dirname, "../dist/bin.js");

/**
 * Inside a test: a child the test leaves running (it failed before stopping it) is killed when
 * the test ends, instead of outliving the test run (a worker would poll Redis on, and load the
 * machine the next tests run on).
 */
function stopWithTest(child: ChildProcess): void {
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
}

const seen = new WeakMap<ChildProcess, string>();
/** Everything a child has printed on stdout so far. */
export function stdoutOf(child: ChildProcess): string {
  return seen.get(child) ?? "";
}

export function cli(
  args: string[],
  env: Record<string, string | undefined> = {},
): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  // The tester's own key never reaches a test; a test may pass a (fake) one.
  const fullEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (!("FAL_KEY" in env)) delete fullEnv.FAL_KEY;
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete fullEnv[k];
  const child = spawn(process.execPath, [BIN, ...args], {
    env: fullEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  stopWithTest(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => {
    stdout += d.toString();
    seen.set(child, stdout);
  });
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, stdout, stderr })),
  );
  return { child, done };
}

/**
 * The CLI as a long-lived process (a worker, an enqueue, a status), its stdout and stderr kept
 * together in one `output()`, run in `cwd` when given.
 */
export function spawnCli(
  args: string[],
  env: Record<string, string>,
  cwd?: string,
): { child: ChildProcess; output: () => string; done: Promise<number | null> } {
  const fullEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete fullEnv.FAL_KEY;
  const child = spawn(process.execPath, [BIN, ...args], {
    env: fullEnv,
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
  });
  stopWithTest(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  return {
    child,
    output: () => out,
    done: new Promise((r) => child.on("close", (code) => r(code))),
  };
}

export const manifestText = (n: number, tag: string) =>
  `name: ${tag}\nscenes:\n${Array.from({ length: n }, (_, i) => `  - id: s${i}\n    prompt: ${tag} scene number ${i}\n    duration: ${i % 3 === 0 ? 10 : 6}\n`).join("")}`;

/** Inside a describe: one emulator (slow enough to catch a run mid-flight) and a temp folder for its tests. */
export function cliFixture(
  options: Pick<EmulatorOptions, "progressLatencyMs" | "render" | "clock"> = {},
): { readonly emu: Emulator; readonly dir: string } {
  let emu: Emulator | undefined;
  let tmp: Awaited<ReturnType<typeof makeTempDir>> | undefined;
  beforeAll(async () => {
    emu = await startTestEmulator({
      slots: 2,
      progressLatencyMs: options.progressLatencyMs ?? 2500,
      render: options.render ?? "shared",
      clock: options.clock,
    });
    tmp = await makeTempDir();
  });
  afterAll(async () => {
    await emu?.close();
    await tmp?.cleanup();
  });
  return {
    get emu() {
      return emu!;
    },
    get dir() {
      return tmp!.dir;
    },
  };
}
