import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IMAGE_RULES, checkImageFacts, readImageFacts, sniffImageFormat } from "./index.js";

// Real files from ffmpeg's encoders (one process), not hand-made headers only.
const files: Record<string, Buffer> = {};
let dir = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hailuo-image-facts-"));
  const out = (name: string, ...codec: string[]) => ["-frames:v", "1", ...codec, join(dir, name)];
  await promisify(execFile)("ffmpeg", [
    ...["-v", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=1"],
    ...out("a.jpg"),
    ...out("a.png"),
    ...out("lossy.webp", "-c:v", "libwebp", "-lossless", "0"),
    ...out("lossless.webp", "-c:v", "libwebp", "-lossless", "1"),
    ...out("a.gif"),
    ...out("a.bmp"),
  ]);
  for (const name of ["a.jpg", "a.png", "lossy.webp", "lossless.webp", "a.gif", "a.bmp"])
    files[name] = await readFile(join(dir, name));
});

afterAll(() => rm(dir, { recursive: true, force: true }));

/** An extended WebP (VP8X) header with a canvas of w × h. */
function vp8x(w: number, h: number): Buffer {
  const b = Buffer.alloc(30);
  b.write("RIFF", 0, "latin1");
  b.writeUInt32LE(22, 4);
  b.write("WEBPVP8X", 8, "latin1");
  b.writeUInt32LE(10, 16);
  b.writeUIntLE(w - 1, 24, 3);
  b.writeUIntLE(h - 1, 27, 3);
  return b;
}

describe("readImageFacts", () => {
  it("reads the size of JPEG, PNG and lossy and lossless WebP as ffmpeg writes them", () => {
    for (const [name, format] of [
      ["a.jpg", "jpeg"],
      ["a.png", "png"],
      ["lossy.webp", "webp"],
      ["lossless.webp", "webp"],
    ] as const) {
      const bytes = files[name]!;
      expect(readImageFacts(bytes), name).toEqual({
        format,
        bytes: bytes.length,
        width: 640,
        height: 360,
      });
    }
    expect(readImageFacts(vp8x(5000, 2000))).toMatchObject({ width: 5000, height: 2000 });
  });

  it("reads a JPEG's frame after EXIF and fill bytes, and a progressive frame (SOF2)", () => {
    const jpg = files["a.jpg"]!;
    const exif = Buffer.from([0xff, 0xe1, 0x00, 0x08, 0x45, 0x78, 0x69, 0x66, 0x00, 0x00]);
    const withExif = Buffer.concat([
      jpg.subarray(0, 2),
      exif,
      Buffer.from([0xff]),
      jpg.subarray(2),
    ]);
    expect(readImageFacts(withExif)).toMatchObject({ format: "jpeg", width: 640, height: 360 });
    const progressive = Buffer.from(jpg);
    const sof = progressive.indexOf(Buffer.from([0xff, 0xc0]));
    progressive[sof + 1] = 0xc2;
    expect(readImageFacts(progressive)).toMatchObject({ width: 640, height: 360 });
  });

  it("names other formats by their bytes, whatever the file is called", () => {
    expect(sniffImageFormat(files["a.gif"]!)).toBe("gif");
    expect(sniffImageFormat(files["a.bmp"]!)).toBe("bmp");
    expect(sniffImageFormat(Buffer.from("%PDF-1.7\n"))).toBe("pdf");
    expect(sniffImageFormat(Buffer.from("\0\0\0\x1cftypheic"))).toBe("heif");
    expect(sniffImageFormat(Buffer.from("name: a manifest\n"))).toBe("not an image");
    const gif = readImageFacts(files["a.gif"]!)!;
    expect(gif.format).toBe("gif");
    expect(checkImageFacts(gif, IMAGE_RULES)[0]).toBe("is gif; MiniMax reads JPEG, PNG, WEBP");
  });

  it("never throws on a cut or broken file: every prefix is read or undefined", () => {
    for (const name of ["a.jpg", "a.png", "lossy.webp", "lossless.webp"]) {
      const bytes = files[name]!;
      const format = readImageFacts(bytes)!.format;
      // The headers lie in the first few hundred bytes; every cut there is tried. Too short to
      // show its magic bytes, a file is "not an image"; past them, its size or nothing.
      for (let n = 0; n < 700; n++) {
        const facts = readImageFacts(bytes.subarray(0, n));
        if (facts?.format === format) expect(facts).toMatchObject({ width: 640, height: 360 });
        else if (facts) expect([facts.format, n < 12]).toEqual(["not an image", true]);
      }
      expect(readImageFacts(bytes.subarray(0, 20)), name).toBeUndefined();
    }
    // A JPEG whose scan starts before any frame header has no size.
    expect(readImageFacts(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0x00, 0x08, 0, 0, 0, 0]))).toBe(
      undefined,
    );
  });
});
