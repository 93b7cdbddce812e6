// The media stage and the CLI at scale, each against a baseline measured in the same run (ratios,
// not verdicts: machines are noisy). Peak memory is the largest process of a command's tree
// (GNU time's %M: a process and the children it waited for).
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createHailuoClient } from "@hailuo/core";
import { createEmulator } from "@hailuo/emulator";
import { parseManifest } from "@hailuo/manifest";
import { readRunReport, runManifest } from "@hailuo/runner";
import { doneRunFolder } from "./run-folders.js";

const exec = promisify(execFile);
const BIN = join(import.meta.dirname, "../../apps/cli/dist/bin.js");
const CLIPS = Number(process.env.BENCH_CLIPS ?? 50);
const RESUME_CLIPS = Number(process.env.BENCH_RESUME_CLIPS ?? 100);
const BIG = Number(process.env.BENCH_BIG_SCENES ?? 10_000);
const HUGE = Number(process.env.BENCH_HUGE_ROWS ?? 100_000);

/** Wall seconds and peak RSS (MiB) of a command. */
async function measure(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ s: number; mib: number }> {
  const t0 = performance.now();
  const { stderr } = await exec("/usr/bin/time", ["-f", "maxrss=%M", cmd, ...args], {
    env,
    maxBuffer: 64 * 1024 * 1024,
  });
  const kib = Number(/maxrss=(\d+)/.exec(stderr)?.[1] ?? 0);
  return { s: (performance.now() - t0) / 1000, mib: kib / 1024 };
}

/** Runs a, b, a, b; the faster measurement of each (peak memory: the larger of each). */
async function interleaved(
  a: () => Promise<{ s: number; mib: number }>,
  b: () => Promise<{ s: number; mib: number }>,
) {
  const runs = [await a(), await b(), await a(), await b()];
  const best = (x: { s: number; mib: number }, y: { s: number; mib: number }) => ({
    s: Math.min(x.s, y.s),
    mib: Math.max(x.mib, y.mib),
  });
  return [best(runs[0]!, runs[2]!), best(runs[1]!, runs[3]!)] as const;
}

const emu = await createEmulator({
  slots: 16,
  progressLatencyMs: 50,
  render: "shared",
  cacheDir: join(tmpdir(), "hailuo-bench-cache"),
});
const env = { ...process.env, FAL_EMULATOR_URL: emu.url };
const root = await mkdtemp(join(tmpdir(), "hailuo-media-bench-"));
const line = (
  what: string,
  ours: { s: number; mib: number },
  base: { s: number; mib: number },
  goal: string,
) =>
  console.log(
    `  ${what.padEnd(44)} ${(ours.s / base.s).toFixed(2)}×  (${ours.s.toFixed(2)} s vs ${base.s.toFixed(2)} s; peak ${ours.mib.toFixed(0)} vs ${base.mib.toFixed(0)} MiB)  goal ${goal}`,
  );

/** A run folder of n clips made by the runner against the emulator (media stage not run). */
async function runFolder(name: string, n: number): Promise<string> {
  const dir = join(root, name);
  const manifest = parseManifest(
    `name: ${name}\nscenes:\n${Array.from({ length: n }, (_, i) => `  - id: s${String(i).padStart(4, "0")}\n    prompt: media bench ${name} ${i}\n`).join("")}assemble: true\nthumbnails: { preview: none }\n`,
    { file: `${name}.yaml` },
  );
  await runManifest({
    manifest,
    runDir: dir,
    client: createHailuoClient({ emulatorUrl: emu.url }),
    concurrency: 16,
  });
  return dir;
}

try {
  console.log(
    `media bench: ${CLIPS} clips of 6 s (1366x768 H.264), resume on ${RESUME_CLIPS}, manifests of ${BIG} scenes`,
  );
  const dir = await runFolder("fifty", CLIPS);
  const clips = (await readRunReport(dir)).items.map((i) => join(dir, i.file!));
  const list = join(root, "list.txt");
  await writeFile(list, clips.map((c) => `file '${c}'`).join("\n"));

  // Posters and sheet from nothing vs one bare ffmpeg contact-sheet command (fast seek into each clip).
  const bareSheet = await measure("ffmpeg", [
    "-v",
    "error",
    "-y",
    ...clips.flatMap((c) => ["-ss", "2.4", "-i", c]),
    "-filter_complex",
    `${clips.map((_, i) => `[${i}:v]scale=320:-2,trim=end_frame=1[t${i}]`).join(";")};${clips.map((_, i) => `[t${i}]`).join("")}concat=n=${clips.length}:v=1:a=0,tile=4x${Math.ceil(clips.length / 4)}`,
    "-frames:v",
    "1",
    join(root, "bare-sheet.jpg"),
  ]);
  const thumbs = await measure(process.execPath, [BIN, "thumbs", dir], env);
  line("posters + contact sheet vs one ffmpeg sheet", thumbs, bareSheet, "≤ 2×");

  // Plain cuts: the first assemble made posters already; this is the film alone.
  await measure(process.execPath, [BIN, "assemble", dir], env);
  const bareCopy = await measure("ffmpeg", [
    "-v",
    "error",
    "-y",
    "-f",
    "concat",
    "-safe",
    "0",
    "-i",
    list,
    "-c",
    "copy",
    join(root, "bare-copy.mp4"),
  ]);
  // The film of the same clips would be reused as it is: remove it so this measures making one.
  await rm(join(dir, "film.mp4"));
  const assemble = await measure(process.execPath, [BIN, "assemble", dir], env);
  line("assemble, plain cuts vs ffmpeg concat copy", assemble, bareCopy, "≤ 3×");

  if (!process.env.BENCH_SKIP_FADE) {
    // Both encode for most of a minute, long enough for this shared host's speed to drift by a tenth:
    // each is measured twice, interleaved, and the faster of each kept.
    const [bareEncode, fades] = await interleaved(
      () =>
        measure("ffmpeg", [
          "-v",
          "error",
          "-y",
          "-f",
          "concat",
          "-safe",
          "0",
          "-i",
          list,
          "-an",
          "-c:v",
          "libx264",
          "-preset",
          "veryfast",
          "-crf",
          "20",
          join(root, "bare-encode.mp4"),
        ]),
      async () => {
        await rm(join(dir, "film.mp4"), { force: true });
        return measure(process.execPath, [BIN, "assemble", dir, "--transition", "fade:0.5"], env);
      },
    );
    line(
      "assemble, fade:0.5 vs plain re-encode (best of 2)",
      fades,
      bareEncode,
      "≤ 1.0×, peak < 1 GiB",
    );
  }

  const hundred = await runFolder("hundred", RESUME_CLIPS);
  await measure(process.execPath, [BIN, "resume", hundred], env);
  const noMedia = await measure(process.execPath, [BIN, "resume", hundred, "--no-media"], env);
  const withMedia = await measure(process.execPath, [BIN, "resume", hundred], env);
  line(
    `resume with nothing to do (${RESUME_CLIPS}), media vs --no-media`,
    withMedia,
    noMedia,
    "≤ 1.5×",
  );

  // A 10,000-clip run folder, all done (clips are hard links of one real clip): status and resume.
  await doneRunFolder(join(root, "ten-thousand"), BIG, clips[0]!, emu.url);
  for (const args of [
    ["status", join(root, "ten-thousand")],
    ["resume", join(root, "ten-thousand"), "--no-media"],
  ]) {
    const m = await measure(process.execPath, [BIN, ...args], env);
    line(
      `${args[0]} on ${BIG} done clips (${m.s.toFixed(2)} s)`,
      m,
      await measure(process.execPath, [BIN, "--version"]),
      "< 1 s",
    );
  }

  // Big manifests: absolute goals (< 1.5 s, < 200 MiB) and the ratio to a bare node start.
  const yaml = join(root, "big.yaml");
  await writeFile(
    yaml,
    `name: big\nscenes:\n${Array.from({ length: BIG }, (_, i) => `  - prompt: "A slow aerial shot over the same coastline, variation ${i}"\n`).join("")}`,
  );
  const csv = join(root, "big.csv");
  await writeFile(
    csv,
    `prompt,duration\n${Array.from({ length: BIG }, (_, i) => `"row ${i} of a long content list",${i % 2 ? 10 : 6}`).join("\n")}\n`,
  );
  // 100,000 rows, parsed as they stream from the file.
  const hugeCsv = join(root, "huge.csv");
  await writeFile(
    hugeCsv,
    `prompt,duration\n${Array.from({ length: HUGE }, (_, i) => `"row ${i} of a long content list, a slow aerial shot over the coastline",${i % 2 ? 10 : 6}`).join("\n")}\n`,
  );
  const hugeJsonl = join(root, "huge.jsonl");
  await writeFile(
    hugeJsonl,
    `${Array.from({ length: HUGE }, (_, i) => JSON.stringify({ prompt: `row ${i} of a long content list, a slow aerial shot over the coastline`, duration: i % 2 ? "10" : "6" })).join("\n")}\n`,
  );
  const node = await measure(process.execPath, ["-e", ""]);
  for (const [what, args] of [
    ["validate big.yaml", ["validate", yaml]],
    ["estimate big.csv", ["estimate", csv]],
    ["run big.yaml --dry-run", ["run", yaml, "--dry-run", "--out", join(root, "big-run")]],
  ] as const) {
    const m = await measure(process.execPath, [BIN, ...args], env);
    line(
      `${what} (${m.s.toFixed(2)} s, ${m.mib.toFixed(0)} MiB) vs node -e ""`,
      m,
      node,
      "< 1.5 s, < 200 MiB",
    );
  }
  for (const [what, file] of [
    [`validate ${HUGE}-row CSV`, hugeCsv],
    [`validate ${HUGE}-line JSONL`, hugeJsonl],
  ] as const) {
    const m = await measure(process.execPath, [BIN, "validate", file], env);
    line(
      `${what} (${m.s.toFixed(2)} s, ${m.mib.toFixed(0)} MiB) vs node -e ""`,
      m,
      node,
      "streamed",
    );
  }
} finally {
  await emu.close();
  await rm(root, { recursive: true, force: true });
}
