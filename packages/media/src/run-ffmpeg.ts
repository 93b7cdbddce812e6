import { randomBytes } from "node:crypto";
import { rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import ffmpeg, { type FfmpegCommand } from "fluent-ffmpeg";
import { abortError } from "@hailuo/shared";
import { FfmpegError, ensureFfmpeg } from "./ffmpeg-env.js";

/** Progress of one ffmpeg job, 0–100 (clamped: fluent-ffmpeg can report more than 100). */
export type ProgressFn = (percent: number) => void;

/** Options every media operation accepts. */
export interface MediaOptions {
  signal?: AbortSignal;
  onProgress?: ProgressFn;
}

function parseTimemark(mark: string | undefined): number {
  if (!mark) return 0;
  const [h, m, s] = mark.split(":").map(Number);
  return (h ?? 0) * 3600 + (m ?? 0) * 60 + (s ?? 0);
}

/**
 * Runs a fluent-ffmpeg command (whose builder must call `.output(tmpOut)`) that writes `out`
 * through a temp file in the same folder, renamed
 * into place only on success: a failed or cancelled job leaves no half-written output behind.
 */
export async function runToFile(
  build: (tmpOut: string) => FfmpegCommand,
  out: string,
  { signal, onProgress, expectedDurationS }: MediaOptions & { expectedDurationS?: number } = {},
): Promise<void> {
  await ensureFfmpeg();
  if (signal?.aborted) throw abortError(signal);
  const ext = basename(out).includes(".") ? basename(out).slice(basename(out).lastIndexOf(".")) : "";
  const tmp = join(dirname(out), `.${basename(out)}.${randomBytes(4).toString("hex")}.tmp${ext}`);
  const command = build(tmp);
  try {
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => command.kill("SIGKILL");
      signal?.addEventListener("abort", onAbort, { once: true });
      command
        .on("progress", (p: { timemark?: string; percent?: number }) => {
          if (!onProgress) return;
          const pct = expectedDurationS ? (parseTimemark(p.timemark) / expectedDurationS) * 100 : (p.percent ?? 0);
          onProgress(Math.max(0, Math.min(100, pct)));
        })
        .on("error", (err: Error, _stdout: string | null, stderr: string | null) => {
          signal?.removeEventListener("abort", onAbort);
          if (signal?.aborted) return reject(abortError(signal));
          const tail = (stderr ?? "").split("\n").filter((l) => l.trim()).slice(-4).join(" | ");
          reject(new FfmpegError(`ffmpeg failed writing ${basename(out)}: ${err.message.split("\n")[0]}${tail ? ` — ${tail}` : ""}`, { cause: err }));
        })
        .on("end", () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        })
        .run();
    });
    await rename(tmp, out);
    onProgress?.(100);
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

/** A fresh fluent-ffmpeg command (paths set by ensureFfmpeg). */
export function command(): FfmpegCommand {
  return ffmpeg().addOption("-hide_banner");
}
