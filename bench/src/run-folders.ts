// Run folders for benchmarks, made as a run would leave them without paying for (or rendering)
// every clip again.
import { createHash } from "node:crypto";
import { link, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseManifest } from "@hailuo/manifest";
import { probe } from "@hailuo/media";
import { planRun, writeRunFile } from "@hailuo/runner";

/**
 * A run folder of `n` finished clips: run.json, a journal of done records, and the clips (hard
 * links of one real clip). Returns the generation keys in plan order.
 */
export async function doneRunFolder(dir: string, n: number, clip: string, emulatorUrl: string): Promise<string[]> {
  await mkdir(join(dir, "clips"), { recursive: true });
  const manifest = parseManifest(`name: big\nscenes:\n${Array.from({ length: n }, (_, i) => `  - id: b${i}\n    prompt: big folder scene ${i}\n`).join("")}`, { file: "big.yaml" });
  const facts = await probe(clip);
  const bytes = (await stat(clip)).size;
  const sha256 = createHash("sha256").update(await readFile(clip)).digest("hex");
  const lines: string[] = [];
  const plan = planRun(manifest);
  for (const p of plan) {
    const file = `clips/${p.sceneId}.mp4`;
    await link(clip, join(dir, file));
    lines.push(JSON.stringify({ t: "done", key: p.key, requestId: `r-${p.sceneId}`, file, bytes, sha256, mtimeMs: (await stat(join(dir, file))).mtimeMs, durationS: facts.durationS, width: facts.width, height: facts.height, video: facts, at: new Date().toISOString() }));
  }
  await writeFile(join(dir, "journal.jsonl"), `${lines.join("\n")}\n`);
  await writeRunFile(dir, manifest, { kind: "emulator", url: emulatorUrl });
  return plan.map((p) => p.key);
}
