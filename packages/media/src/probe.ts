import { stat } from "node:fs/promises";
import type { FfprobeData } from "fluent-ffmpeg";
import { HailuoError } from "@hailuo/shared";
import { ffmpegPaths, fluent, missingTool } from "./ffmpeg-env.js";
import { readMp4 } from "./mp4-facts.js";

/** What a video file is, as measured (never assumed). */
export interface VideoInfo {
  durationS: number;
  width: number;
  height: number;
  /** Frames per second as a number (e.g. 24, 23.976). */
  fps: number;
  /** The exact rate, e.g. "24/1". */
  fpsRational: string;
  codec: string;
  pixFmt: string;
  profile?: string;
  timeBase: string;
  sizeBytes: number;
  hasAudio: boolean;
  audioCodec?: string;
  audioSampleRate?: number;
  audioChannels?: number;
}

/** The file is not a readable video. */
export class NotAVideoError extends HailuoError {
  constructor(file: string, why: string, cause?: unknown) {
    super("not_video", `${file} is not a readable video: ${why}`, { retryable: false, cause });
  }
}

function rate(r: string | undefined): number {
  const [n, d] = (r ?? "0/1").split("/").map(Number);
  return d ? n! / d : n!;
}

/**
 * A file's facts: duration, size, fps, codec, pixel format, audio or not. A plain H.264 MP4 is read
 * in-process (`mp4Facts`); anything else, or anything it does not read exactly, by ffprobe. An MP4
 * whose sample tables point past its end is refused as cut short: ffprobe reads its header and
 * says nothing of the missing frames (a torn download with its index up front looks whole).
 */
export async function probe(file: string): Promise<VideoInfo> {
  const size = await stat(file).then(
    (s) => s.size,
    () => undefined,
  );
  const read = size === undefined ? undefined : await readMp4(file, size);
  const end = read?.samplesEndByte;
  if (end !== undefined && !(end <= size!)) {
    throw new NotAVideoError(
      file,
      Number.isNaN(end)
        ? "its sample table points to chunks it does not list"
        : `it is cut short: its samples run to byte ${end}, the file has ${size} bytes`,
    );
  }
  return read?.facts || ffprobeFacts(file);
}

/** The facts as ffprobe tells them (one process per file). */
export async function ffprobeFacts(file: string): Promise<VideoInfo> {
  // No version check first: one ffprobe start is the whole cost of a probe; a missing ffprobe says so here.
  const { ffprobe } = ffmpegPaths();
  const data = await new Promise<FfprobeData>((resolve, reject) =>
    fluent().ffprobe(file, (err, d) => {
      if (!err) return resolve(d);
      if (
        (err as NodeJS.ErrnoException).code === "ENOENT" ||
        /spawn \S+ ENOENT/.test(String(err.message))
      )
        return reject(missingTool(ffprobe));
      reject(
        new NotAVideoError(
          file,
          String(err.message).split("\n").filter(Boolean).pop() ?? "ffprobe failed",
          err,
        ),
      );
    }),
  );
  const v = data.streams.find((s) => s.codec_type === "video");
  if (!v) throw new NotAVideoError(file, "it has no video stream");
  const a = data.streams.find((s) => s.codec_type === "audio");
  const durationS = Number(data.format.duration ?? v.duration);
  if (!Number.isFinite(durationS) || durationS <= 0)
    throw new NotAVideoError(file, "it has no duration");
  return {
    durationS,
    width: Number(v.width),
    height: Number(v.height),
    fps: rate(v.avg_frame_rate && v.avg_frame_rate !== "0/0" ? v.avg_frame_rate : v.r_frame_rate),
    fpsRational: String(v.r_frame_rate),
    codec: String(v.codec_name),
    pixFmt: String(v.pix_fmt),
    profile: v.profile === undefined ? undefined : String(v.profile),
    timeBase: String((v as { time_base?: string }).time_base ?? ""),
    sizeBytes: Number(data.format.size ?? 0),
    hasAudio: Boolean(a),
    audioCodec: a?.codec_name,
    audioSampleRate: a?.sample_rate === undefined ? undefined : Number(a.sample_rate),
    audioChannels: a?.channels,
  };
}
