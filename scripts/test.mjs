// Runs every package's tests through turbo and ends with one plain summary line
// ("tests: N passed, N failed"), adding up vitest's per-package counts.
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

// Three streams side by side on 2 cores, each one package at a time: the CLI (the longest: child
// processes that mostly wait, three files at a time), then scheduler and queue; the runner (money
// tests that mostly wait on the emulator), then publish and review; and everything else. The
// tests wait more than they compute (about 1.5 of 2 cores busy with two streams), so a third
// stream shortens the wall time. Left to turbo alone the CLI started last, a minute later.
const streams = [
  ["@hailuo/cli", "@hailuo/scheduler", "@hailuo/queue"],
  ["@hailuo/runner", "@hailuo/publish", "@hailuo/review"],
];
const named = streams.flat();
const codes = await Promise.all([
  ...streams.map(async ([first, ...rest]) => {
    const head = await turbo([`--filter=${first}`]);
    return [head, await turbo([...rest.map((p) => `--filter=${p}`), "--concurrency=1"])];
  }),
  turbo([...named.map((p) => `--filter=!${p}`), "--concurrency=1"]),
]).then((c) => c.flat());
console.log(`\ntests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(codes.find((c) => c !== 0) ?? 0);
