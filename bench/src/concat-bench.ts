// Assembles 50 six-second clips by stream copy and by re-encode, in the same run, and prints
// the ratio. Clips come from the emulator's animatic renderer (real H.264 1366x768 24 fps).
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AnimaticRenderer } from "@hailuo/emulator";
import { concatClips } from "@hailuo/media";

const CLIPS = Number(process.env.BENCH_CLIPS ?? 50);
const DISTINCT = 5;

const renderer = new AnimaticRenderer(join(tmpdir(), "hailuo-bench-cache"));
const distinct: string[] = [];
for (let i = 0; i < DISTINCT; i++)
  distinct.push(await renderer.render({ prompt: `Concat bench clip ${i}`, durationS: 6 }));
const clips = Array.from({ length: CLIPS }, (_, i) => distinct[i % DISTINCT]!);
const dir = await mkdtemp(join(tmpdir(), "hailuo-concat-bench-"));

async function timed(mode: "copy" | "reencode") {
  const out = join(dir, `${mode}.mp4`);
  const t0 = performance.now();
  const r = await concatClips(clips, out, { mode });
  return { ms: performance.now() - t0, durationS: r.info.durationS, bytes: (await stat(out)).size };
}

try {
  const copy = await timed("copy");
  const reencode = await timed("reencode");
  const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
  console.log(`concat bench: ${CLIPS} × 6 s clips (${CLIPS * 6} s of 1366x768 H.264)`);
  console.log(
    `  stream copy  ${(copy.ms / 1000).toFixed(2)} s wall, film ${copy.durationS.toFixed(2)} s, ${mib(copy.bytes)}, ${((CLIPS * 6) / (copy.ms / 1000)).toFixed(0)}× real time`,
  );
  console.log(
    `  re-encode    ${(reencode.ms / 1000).toFixed(2)} s wall, film ${reencode.durationS.toFixed(2)} s, ${mib(reencode.bytes)}, ${((CLIPS * 6) / (reencode.ms / 1000)).toFixed(1)}× real time`,
  );
  console.log(`  ratio        re-encode / copy = ${(reencode.ms / copy.ms).toFixed(1)}×`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
