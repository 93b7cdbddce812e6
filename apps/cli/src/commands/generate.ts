import { resolve } from "node:path";
import { downloadVideo, estimateCost, normalizeHailuoInput, type HailuoStatus } from "@hailuo/core";
import { probe } from "@hailuo/media";
import { connectFal } from "../fal-connection.js";
import { askToSpend, mustConfirm } from "../confirm-spend.js";
import { emitJson } from "../events.js";

/** Options of `hailuo generate`. */
export interface GenerateOptions {
  duration?: string;
  optimizer?: boolean;
  out?: string;
  yes?: boolean;
  json?: boolean;
}

/** One clip: submit, live status, download, probe. */
export async function generateCommand(
  prompt: string,
  opts: GenerateOptions,
  signal: AbortSignal,
): Promise<number> {
  const input = normalizeHailuoInput({
    prompt,
    duration: opts.duration ?? "6",
    prompt_optimizer: opts.optimizer !== false,
  });
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const conn = await connectFal({ say });
  const tty = process.stderr.isTTY;
  let lastLine = "";
  const show = (s: HailuoStatus) => {
    const line =
      s.state === "queued"
        ? `queued (position ${s.queuePosition ?? "?"})`
        : s.state === "in_progress"
          ? `in progress: ${s.logs.at(-1)?.message ?? "…"}`
          : "completed";
    if (line === lastLine) return;
    lastLine = line;
    if (tty) process.stderr.write(`\r\x1b[2K${line}`);
    else say(line);
  };
  try {
    const cost = estimateCost(input);
    const billed = conn.backend.kind === "fal";
    say(
      `→ ${conn.target}${billed ? " (billed)" : " (nothing billed)"}: one ${input.duration} s clip, at most $${cost.usd.toFixed(3)}`,
    );
    if (mustConfirm({ billed, usd: cost.usd, yes: opts.yes }))
      await askToSpend(`spend up to $${cost.usd.toFixed(3)} on ${conn.target}?`);
    const started = Date.now();
    const { handle, output } = await conn.client.generate(input, {
      signal,
      onEnqueue: (h) => {
        if (opts.json) emitJson({ type: "submitted", requestId: h.requestId });
        say(`request id ${h.requestId}`);
      },
      onUpdate: show,
    });
    if (tty) process.stderr.write("\n");
    const out = resolve(opts.out ?? `hailuo-${handle.requestId.slice(0, 8)}.mp4`);
    const dl = await downloadVideo(output.video.url, out, {
      expectedBytes: output.video.file_size,
      signal,
    });
    const info = await probe(out);
    say(
      `saved ${out} (${(dl.bytes / 1024).toFixed(0)} KiB, sha256 ${dl.sha256.slice(0, 12)}…) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    say(
      `probed: ${info.width}x${info.height} ${info.codec} ${info.pixFmt} ${info.fps} fps, ${info.durationS.toFixed(2)} s, ${info.hasAudio ? "with" : "no"} audio`,
    );
    if (opts.json)
      emitJson({
        type: "clip",
        file: out,
        requestId: handle.requestId,
        bytes: dl.bytes,
        sha256: dl.sha256,
        probe: info,
      });
    else process.stdout.write(`${out}\n`);
    return 0;
  } finally {
    await conn.close();
  }
}
