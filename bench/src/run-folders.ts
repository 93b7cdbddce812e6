// Run folders for benchmarks, made as a run would leave them without paying for (or rendering)
// every clip again.
import { createHash } from "node:crypto";
import { link, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { HAILUO_ENDPOINT } from "@hailuo/core";
import { parseManifest } from "@hailuo/manifest";
import { probe } from "@hailuo/media";
import { planRun, writeRunFile } from "@hailuo/runner";

/**
 * A run folder of `n` finished clips: run.json, the journal a run writes for them (submitting,
 * submitted, completed and done per clip, so a resume reads as much as after a real run), and the
 * clips (hard links of one real clip). Returns the generation keys in plan order.
 */
export async function doneRunFolder(
  dir: string,
  n: number,
  clip: string,
  emulatorUrl: string,
): Promise<string[]> {
  await mkdir(join(dir, "clips"), { recursive: true });
  const manifest = parseManifest(
    `name: big\nscenes:\n${Array.from({ length: n }, (_, i) => `  - id: b${i}\n    prompt: big folder scene ${i}\n`).join("")}`,
    { file: "big.yaml" },
  );
  const facts = await probe(clip);
  const bytes = (await stat(clip)).size;
  const sha256 = createHash("sha256")
    .update(await readFile(clip))
    .digest("hex");
  const plan = planRun(manifest);
  const at = new Date().toISOString();
  const lines: string[] = [
    JSON.stringify({ t: "run", name: "big", manifest: "big.yaml", items: n, pid: process.pid, at }),
  ];
  for (const p of plan) {
    const file = `clips/${p.sceneId}.mp4`;
    const requestId = `r-${p.sceneId}-0000-0000-000000000000`;
    await link(clip, join(dir, file));
    const handle = { endpoint: HAILUO_ENDPOINT, requestId, submittedAt: at };
    lines.push(
      JSON.stringify({
        t: "submitting",
        key: p.key,
        scene: p.sceneId,
        take: p.take,
        attempt: 1,
        usd: p.costUsd,
        at,
      }),
      JSON.stringify({ t: "submitted", key: p.key, handle, at }),
      JSON.stringify({
        t: "completed",
        key: p.key,
        requestId,
        videoUrl: `${emulatorUrl}/files/${requestId}.mp4`,
        fileSize: bytes,
        seconds: Number(p.input.duration),
        usd: p.costUsd,
        at,
      }),
      JSON.stringify({
        t: "done",
        key: p.key,
        requestId,
        file,
        bytes,
        sha256,
        mtimeMs: (await stat(join(dir, file))).mtimeMs,
        durationS: facts.durationS,
        width: facts.width,
        height: facts.height,
        video: facts,
        at,
      }),
    );
  }
  lines.push(JSON.stringify({ t: "finished", ok: n, failed: 0, at }));
  await writeFile(join(dir, "journal.jsonl"), `${lines.join("\n")}\n`);
  await writeRunFile(dir, manifest, { kind: "emulator", url: emulatorUrl });
  return plan.map((p) => p.key);
}
