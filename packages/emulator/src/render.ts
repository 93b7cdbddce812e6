import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rename, stat, unlink, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";

/** What a clip shows. */
export interface RenderSpec {
  prompt: string;
  durationS: number;
  /** Extra text drawn at the top (e.g. "optimizer on"). */
  label?: string;
  /** Which roll of the dice for this input: 2 and up get other colours. @default 1 */
  variant?: number;
  /** Frame size; part of the cache key only when not the seed's 1366×768. @default 1366 */
  width?: number;
  /** @default 768 */
  height?: number;
}

/**
 * An image-to-video clip: its first frame is the start image itself (scaled to the clip size,
 * nothing drawn on it) and its last frame the end image (or the start image mirrored), so
 * continuity can be checked pixel by pixel; the frames between fade from one to the other under
 * the prompt card.
 */
export interface ImageClipSpec {
  prompt: string;
  durationS: number;
  width: number;
  height: number;
  /** Local file of the first frame (PNG, JPEG or WebP). */
  startImage: string;
  /** Local file of the last frame. */
  endImage?: string;
  label: string;
  /** @default 1 */
  variant?: number;
}

const FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/** Part of every cache key: a change to how clips look renders them anew. */
const RENDER_VERSION = 2;
/** The same for image-to-video clips. */
const IMAGE_CLIP_VERSION = 4;

/** A stable colour pair from the prompt, so neighbouring scenes differ on a contact sheet. */
export function promptColors(prompt: string): [string, string] {
  const h = createHash("sha256").update(prompt).digest();
  const hue = (h[0]! * 360) / 256;
  return [hslHex(hue, 0.55, 0.32), hslHex((hue + 40) % 360, 0.6, 0.5)];
}

function hslHex(h: number, s: number, l: number): string {
  const k = (n: number) => (n + h / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) =>
    Math.round(255 * (l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)))));
  return `0x${[f(0), f(8), f(4)].map((v) => v.toString(16).padStart(2, "0")).join("")}`;
}

/** Wraps text at word boundaries into at most `maxLines` lines of `width` characters. */
export function wrapText(text: string, width = 44, maxLines = 9): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.replace(/\s+/g, " ").trim().split(" ")) {
    const w = word.length > width ? `${word.slice(0, width - 1)}…` : word;
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  if (lines.length > maxLines) {
    lines.length = maxLines;
    lines[maxLines - 1] = `${lines[maxLines - 1]!.slice(0, width - 1)}…`;
  }
  return lines.join("\n");
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => {
      err = (err + d.toString()).slice(-2000);
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}: ${err}`)),
    );
  });
}

/**
 * Renders the animatic card for a spec into `cacheDir`, reusing an identical earlier render:
 * 1366x768, H.264 yuv420p, 24 fps, exactly `durationS` seconds, no audio, +faststart.
 */
export class AnimaticRenderer {
  private readonly inFlight = new Map<string, Promise<string>>();
  constructor(
    private readonly cacheDir: string,
    private readonly ffmpegPath = process.env.FFMPEG_PATH || "ffmpeg",
  ) {}

  /** Path of the rendered MP4 for this spec (rendered on first use). */
  render(spec: RenderSpec): Promise<string> {
    const key = createHash("sha256")
      .update(
        JSON.stringify([
          RENDER_VERSION,
          spec.prompt,
          spec.durationS,
          spec.label ?? "",
          spec.variant ?? 1,
          // Absent for the seed's size, so every clip rendered before sizes existed keeps its key.
          ...((spec.width ?? 1366) !== 1366 || (spec.height ?? 768) !== 768
            ? [spec.width, spec.height, "scaled card"]
            : []),
        ]),
      )
      .digest("hex")
      .slice(0, 24);
    return this.once(key, (out) => this.renderTo(spec, out, key));
  }

  /** Path of the rendered MP4 of an image-to-video clip (rendered on first use; see ImageClipSpec). */
  renderImageClip(spec: ImageClipSpec): Promise<string> {
    // Image paths are named by their content hash (image-source.ts), so they stand for the pictures.
    const key = createHash("sha256")
      .update(
        JSON.stringify([
          IMAGE_CLIP_VERSION,
          spec.prompt,
          spec.durationS,
          spec.width,
          spec.height,
          basename(spec.startImage),
          spec.endImage ? basename(spec.endImage) : null,
          spec.label,
          spec.variant ?? 1,
        ]),
      )
      .digest("hex")
      .slice(0, 24);
    return this.once(`i2v-${key}`, (out) => this.renderImageClipTo(spec, out, `i2v-${key}`));
  }

  /** One render per key at a time; an earlier render of the same key is reused from the cache. */
  private once(key: string, render: (out: string) => Promise<string>): Promise<string> {
    const out = join(this.cacheDir, `${key}.mp4`);
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const job = stat(out)
      .then(
        (s) => s.size > 0,
        () => false,
      )
      .then((done) => (done ? out : render(out)))
      .finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, job);
    return job;
  }

  private async renderImageClipTo(spec: ImageClipSpec, out: string, key: string): Promise<string> {
    await mkdir(this.cacheDir, { recursive: true });
    const textFile = join(this.cacheDir, `${key}.txt`);
    const labelFile = join(this.cacheDir, `${key}.label.txt`);
    await writeFile(textFile, wrapText(spec.prompt));
    await writeFile(labelFile, spec.label);
    const { width: w, height: h, durationS: d } = spec;
    const frames = Math.round(d * 24);
    const [, band] = promptColors(
      (spec.variant ?? 1) > 1 ? `${spec.prompt}\u0000roll ${spec.variant}` : spec.prompt,
    );
    const font = existsSync(FONT) ? `fontfile=${FONT}` : "font=Sans";
    // First and last frames stay clean: the card is drawn on frames 1 … N-2 only.
    const middle = `enable='between(n,1,${frames - 2})'`;
    // Each image is decoded and scaled once, then repeated (an image input looped by the demuxer
    // is decoded again for every frame, which took most of a render).
    const fit = `scale=${w}:${h}:flags=bicubic,setsar=1,format=yuv420p,loop=loop=${frames - 1}:size=1:start=0,setpts=N/24/TB`;
    const vf = [
      `[0:v]${fit}[a]`,
      `[1:v]${fit}${spec.endImage ? "" : ",hflip"}[b]`,
      // A one-second fade that ends three frames before the last: frame 0 is the start image and
      // the last frames the end image, unblended (a fade ending on the last frame left it a few
      // percent blended on some runs: 32-34 dB instead of 39).
      `[a][b]xfade=transition=fade:duration=1:offset=${(frames - 27) / 24}[x]`,
      `[2:v]format=rgba,colorchannelmixer=aa=0.35[band]`,
      `[x][band]overlay=x='mod(t*160,W+w)-w':y=0:${middle}`,
      `drawtext=${font}:expansion=none:textfile=${textFile}:fontsize=${Math.round(h / 19)}:line_spacing=12:fontcolor=white:x=(w-tw)/2:y=(h-th)/2:box=1:boxcolor=black@0.35:boxborderw=24:${middle}`,
      `drawtext=${font}:expansion=none:textfile=${labelFile}:fontsize=${Math.round(h / 30)}:fontcolor=white@0.85:x=32:y=28:${middle}`,
    ].join(",");
    const tmp = `${out}.${process.pid}.${Date.now()}.tmp.mp4`;
    const still = (file: string) => ["-i", file];
    try {
      await run(this.ffmpegPath, [
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        ...still(spec.startImage),
        ...still(spec.endImage ?? spec.startImage),
        "-f",
        "lavfi",
        "-i",
        `color=c=${band}:s=${Math.round(w / 4)}x${h}:r=24:d=${d}`,
        "-filter_complex",
        vf.replace(/\],(?=\[)/g, "];"),
        "-frames:v",
        String(frames),
        "-r",
        "24",
        "-an",
        "-c:v",
        "libx264",
        // The last frame a key frame too: coded whole, it is the end image as faithfully as frame 0
        // is the start image (as a P-frame right after the fade it came out ~33 dB).
        "-force_key_frames",
        `expr:eq(n,${frames - 1})`,
        "-preset",
        "ultrafast",
        // Finer than the cards (26): the first and last frames are compared to the images.
        "-crf",
        "16",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        tmp,
      ]);
      await rename(tmp, out);
    } finally {
      await unlink(tmp).catch(() => {});
      await unlink(textFile).catch(() => {});
      await unlink(labelFile).catch(() => {});
    }
    return out;
  }

  private async renderTo(spec: RenderSpec, out: string, key: string): Promise<string> {
    await mkdir(this.cacheDir, { recursive: true });
    const textFile = join(this.cacheDir, `${key}.txt`);
    const labelFile = join(this.cacheDir, `${key}.label.txt`);
    await writeFile(textFile, wrapText(spec.prompt));
    await writeFile(labelFile, spec.label ?? "hailuo-02 emulator");
    const [c0, c1] = promptColors(
      (spec.variant ?? 1) > 1 ? `${spec.prompt}\u0000roll ${spec.variant}` : spec.prompt,
    );
    const font = existsSync(FONT) ? `fontfile=${FONT}` : "font=Sans";
    const w = spec.width ?? 1366;
    const h = spec.height ?? 768;
    // Sizes and speeds are the seed's at 768 lines and scale with the height, so a small clip
    // shows the same card.
    const px = (n: number) => Math.max(1, Math.round((n * h) / 768));
    // A band of the second colour sweeps across the first (a moving picture, like a shot): five
    // times cheaper to render than ffmpeg's gradients source, which a cold test run felt.
    const vf = [
      `[0:v][1:v]overlay=x='mod(t*${px(160)},W+w)-w':y=0`,
      `drawtext=${font}:expansion=none:textfile=${textFile}:fontsize=${px(40)}:line_spacing=${px(12)}:fontcolor=white:x=(w-tw)/2:y=(h-th)/2:box=1:boxcolor=black@0.35:boxborderw=${px(24)}`,
      `drawtext=${font}:expansion=none:textfile=${labelFile}:fontsize=${px(26)}:fontcolor=white@0.85:x=${px(32)}:y=${px(28)}`,
      `drawtext=${font}:text='%{pts\\:hms}':fontsize=${px(34)}:fontcolor=white:x=w-tw-${px(32)}:y=h-th-${px(28)}:box=1:boxcolor=black@0.4:boxborderw=${px(10)}`,
    ].join(",");
    const tmp = `${out}.${process.pid}.${Date.now()}.tmp.mp4`;
    try {
      await run(this.ffmpegPath, [
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        `color=c=${c0}:s=${w}x${h}:r=24:d=${spec.durationS}`,
        "-f",
        "lavfi",
        "-i",
        `color=c=${c1}:s=${2 * Math.round(px(320) / 2)}x${h}:r=24:d=${spec.durationS}`,
        "-filter_complex",
        vf,
        "-t",
        String(spec.durationS),
        "-r",
        "24",
        "-an",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "26",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        tmp,
      ]);
      await rename(tmp, out);
    } finally {
      await unlink(tmp).catch(() => {});
      await unlink(textFile).catch(() => {});
      await unlink(labelFile).catch(() => {});
    }
    return out;
  }
}
