// `pnpm test`: the formatter check, the build, the type check and every package's tests, ending
// with one plain summary line ("tests: N passed, N failed") adding up vitest's per-package counts.
//
import { spawn } from "node:child_process";

const ANSI = /\x1b\[[0-9;]*m/g;
let passed = 0;
let failed = 0;
let skipped = 0;

function turbo(args) {
  const child = spawn("pnpm", ["exec", "turbo", "run", "test", "--output-logs=full", ...args], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1" },
  });
  let buffer = "";
  child.stdout.on("data", (chunk) => {
    process.stdout.write(chunk);
    buffer += chunk.toString();
    const lines = buffer.split("\n");
    buffer = lines.pop() ?? "";
    for (const raw of lines) {
      const line = raw.replace(ANSI, "");
      const m = /\bTests\s+(.*)\((\d+)\)\s*$/.exec(line);
      if (!m) continue;
      passed += Number(/(\d+) passed/.exec(m[1])?.[1] ?? 0);
      failed += Number(/(\d+) failed/.exec(m[1])?.[1] ?? 0);
      skipped += Number(/(\d+) skipped/.exec(m[1])?.[1] ?? 0);
    }
  });
  return new Promise((resolve) => child.on("close", (code) => resolve(code ?? 1)));
}

// Three streams side by side on 2 cores, each one package at a time after its first: the CLI
// (child processes that mostly wait, three files at a time); the runner (money tests that mostly
// wait on the emulator, three files at a time), then the packages that run against Redis and
// emulators; the packaging test (packs and installs with npm), then everything else. The tests
// wait more than they compute, so a third stream shortens the wall time; each stream holds about
// a third of the whole, its longest package first. Left to turbo alone the CLI started last.
const streams = [
  ["@hailuo/cli"],
  [
    "@hailuo/runner",
    "@hailuo/queue",
    "@hailuo/scheduler",
    "@hailuo/publish",
    "@hailuo/core",
    "@hailuo/review",
  ],
  ["@hailuo/packaging"],
];
const named = streams.flat();

/** Runs a command with the terminal as its output; resolves to its exit code. */
function sh(cmd, args) {
  const child = spawn(cmd, args, {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1" },
  });
  return new Promise((resolve) => child.on("close", (code) => resolve(code ?? 1)));
}

// The formatter beside the build, then the type check beside the tests: on 2 cores each fills
// the other's waits (the tests wait on emulator latencies more than they compute).
const setup = await Promise.all([
  sh("pnpm", ["exec", "prettier", "--check", ".", "--log-level", "warn"]),
  sh("pnpm", ["exec", "turbo", "run", "build", "--output-logs=errors-only"]),
]);
if (setup.some((c) => c !== 0)) process.exit(setup.find((c) => c !== 0));
// One program over every package's sources and tests: one tsc instead of one per package.
const typecheck = sh("pnpm", ["exec", "tsc", "-p", "tsconfig.json"]);
const codes = await Promise.all(
  streams.map(async ([first, ...rest], i) => {
    const head = await turbo([`--filter=${first}`]);
    // The last stream ends with every package no stream names.
    const tail = i === streams.length - 1 ? named.map((p) => `--filter=!${p}`) : [];
    const filters = [...rest.map((p) => `--filter=${p}`), ...tail];
    if (filters.length === 0) return [head];
    return [head, await turbo([...filters, "--concurrency=1"])];
  }),
).then(async (c) => [...c.flat(), await typecheck]);
console.log(`\ntests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(codes.find((c) => c !== 0) ?? 0);
