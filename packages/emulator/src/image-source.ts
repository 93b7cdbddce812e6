import { spawn } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { mkdir, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { checkImageFacts, IMAGE_RULES } from "@hailuo/endpoints";
import type { InputProblem } from "./input-rules.js";
import type { UploadStore } from "./storage-routes.js";

/** An image a generation cannot use: answered as the request's 422, as fal's app would. */
export class ImageInputError extends Error {
  constructor(readonly problem: InputProblem) {
    super(problem.msg);
  }
}

/** A local copy of an input image, named by its content hash, with what MiniMax checks. */
export interface LocalImage {
  path: string;
  sha256: string;
  width: number;
  height: number;
}

/** The largest image fetched; MiniMax itself takes under 20 MB. */
const MAX_FETCH_BYTES = 64 * 1024 * 1024;

function probe(
  ffprobe: string,
  file: string,
): Promise<{ codec: string; width: number; height: number } | undefined> {
  return new Promise((resolve) => {
    const child = spawn(
      ffprobe,
      ["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "json", file],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", () => resolve(undefined));
    child.on("close", () => {
      try {
        const s = (JSON.parse(out) as { streams?: Record<string, unknown>[] }).streams?.[0];
        if (!s) return resolve(undefined);
        resolve({
          codec: String(s.codec_name),
          width: Number(s.width),
          height: Number(s.height),
        });
      } catch {
        resolve(undefined);
      }
    });
  });
}

/**
 * Fetches the images a request names, as fal's runner downloads them: from the emulator's own
 * storage (an upload), a data: URI, or any http(s) URL. A file it cannot get answers
 * `file_download_error`; one MiniMax would refuse (format, size, short side, aspect: the
 * records' IMAGE_RULES) answers `value_error`, fal's default for a field its app refuses
 * (docs.fal.ai/reference/serverless-sdk/fal.exceptions, FieldException).
 */
export class ImageSource {
  constructor(
    private readonly dir: string,
    private readonly uploads: UploadStore,
    private readonly ffprobePath = process.env.FFPROBE_PATH || "ffprobe",
  ) {}

  /** The image at `url` for the request field `field`, checked; throws ImageInputError. */
  async get(url: string, field: string): Promise<LocalImage> {
    const bytes = await this.bytesOf(url, field);
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    await mkdir(this.dir, { recursive: true });
    const path = join(this.dir, `${sha256.slice(0, 32)}.img`);
    const have = await stat(path).then(
      (s) => s.size === bytes.length,
      () => false,
    );
    if (!have) {
      const tmp = `${path}.${randomUUID()}.tmp`;
      await writeFile(tmp, bytes);
      await rename(tmp, path);
    }
    const facts = await probe(this.ffprobePath, path);
    const format = facts
      ? (({ mjpeg: "jpeg", png: "png", webp: "webp" } as Record<string, string>)[facts.codec] ??
        facts.codec)
      : "not an image";
    const problems = checkImageFacts(
      { format, bytes: bytes.length, width: facts?.width ?? 0, height: facts?.height ?? 1 },
      IMAGE_RULES,
    );
    if (!facts || problems.length)
      throw new ImageInputError({
        loc: ["body", field],
        msg: `The image ${problems.join("; ")}`,
        type: "value_error",
      });
    return { path, sha256, width: facts.width, height: facts.height };
  }

  private async bytesOf(url: string, field: string): Promise<Buffer> {
    const fail = (why: string): never => {
      throw new ImageInputError({
        loc: ["body", field],
        msg: `Failed to download the file: ${why}`,
        type: "file_download_error",
      });
    };
    const data = /^data:image\/[a-z]+;base64,(.*)$/is.exec(url);
    if (data) return Buffer.from(data[1]!.replace(/\s+/g, ""), "base64");
    const uploaded = await this.uploads.bytesForUrl(url);
    if (uploaded) return uploaded;
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(15_000) });
    } catch (error) {
      return fail((error as Error).message);
    }
    if (!res.ok) return fail(`HTTP ${res.status}`);
    const body = Buffer.from(await res.arrayBuffer());
    if (body.length > MAX_FETCH_BYTES) return fail(`larger than ${MAX_FETCH_BYTES} bytes`);
    return body;
  }
}
