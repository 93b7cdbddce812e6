import type { ImageFacts } from "./endpoint-input.js";

/**
 * Reading an image's format and size from its bytes, for the checks of `checkImageFacts`.
 *
 * Why our own ~80 lines and not a library such as `image-size`: MiniMax reads three formats
 * only (IMAGE_RULES), each of which states its size in a fixed header (PNG's IHDR, WebP's VP8 /
 * VP8L / VP8X chunk, JPEG's SOF segment); every contract of the family stays dependency-free and
 * pure (the manifest, the runner and the emulator can all call it), and every read is
 * bounds-checked, so a cut or crafted file is "unreadable", never a crash. Other formats are
 * named from their magic bytes only, for the message.
 */

const u16be = (b: Uint8Array, i: number) => (b[i]! << 8) | b[i + 1]!;
const u16le = (b: Uint8Array, i: number) => b[i]! | (b[i + 1]! << 8);
const u24le = (b: Uint8Array, i: number) => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16);
const u32be = (b: Uint8Array, i: number) => ((b[i]! << 24) >>> 0) + u24be(b, i + 1);
const u24be = (b: Uint8Array, i: number) => (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
const u32le = (b: Uint8Array, i: number) => (u24le(b, i) + (b[i + 3]! << 24)) >>> 0;
const ascii = (b: Uint8Array, from: number, to: number) =>
  String.fromCharCode(...b.subarray(from, to));
const starts = (b: Uint8Array, bytes: number[]) => bytes.every((v, i) => b[i] === v);

/**
 * What a file's first bytes say it is: `jpeg`, `png` or `webp` (the formats MiniMax reads), or
 * another format's name (`gif`, `bmp`, `tiff`, `heif`, `avif`, `pdf`), or `not an image`. The
 * file name is never consulted: a GIF named `start.png` is a GIF.
 */
export function sniffImageFormat(bytes: Uint8Array): string {
  if (starts(bytes, [0xff, 0xd8, 0xff])) return "jpeg";
  if (starts(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "png";
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === "RIFF" && ascii(bytes, 8, 12) === "WEBP")
    return "webp";
  const head = ascii(bytes, 0, Math.min(bytes.length, 12));
  if (head.startsWith("GIF8")) return "gif";
  if (head.startsWith("BM")) return "bmp";
  if (head.startsWith("II*\0") || head.startsWith("MM\0*")) return "tiff";
  if (head.startsWith("%PDF")) return "pdf";
  if (head.slice(4, 8) === "ftyp") {
    const brand = head.slice(8, 12);
    if (brand === "avif" || brand === "avis") return "avif";
    if (["heic", "heix", "heim", "heis", "mif1", "msf1"].includes(brand)) return "heif";
  }
  return "not an image";
}

// JPEG markers that carry the frame's size: SOF0-3, 5-7, 9-11, 13-15 (ITU T.81, B.2.2).
const SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

function jpegSize(b: Uint8Array): { width: number; height: number } | undefined {
  let i = 2;
  while (i + 3 < b.length) {
    if (b[i] !== 0xff) return undefined;
    // Any number of 0xFF fill bytes may precede a marker.
    while (b[i + 1] === 0xff && i + 2 < b.length) i++;
    const marker = b[i + 1]!;
    i += 2;
    // Markers without a length: TEM and RST0-7 (SOI was skipped above).
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    // End of image or start of scan before any frame header: no size to read.
    if (marker === 0xd9 || marker === 0xda || i + 1 >= b.length) return undefined;
    const length = u16be(b, i);
    if (SOF.has(marker)) {
      if (i + 7 > b.length || length < 8) return undefined;
      return { height: u16be(b, i + 3), width: u16be(b, i + 5) };
    }
    if (length < 2) return undefined;
    i += length;
  }
  return undefined;
}

function webpSize(b: Uint8Array): { width: number; height: number } | undefined {
  if (b.length < 30) return undefined;
  const chunk = ascii(b, 12, 16);
  // Lossy: a key frame's start code 9D 01 2A, then 14-bit width and height (RFC 9649, 2.5).
  if (chunk === "VP8 ") {
    if (!starts(b.subarray(23), [0x9d, 0x01, 0x2a])) return undefined;
    return { width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff };
  }
  // Lossless: signature 0x2F, then width-1 and height-1 in 14 bits each (RFC 9649, 3.2).
  if (chunk === "VP8L") {
    if (b[20] !== 0x2f) return undefined;
    const bits = u32le(b, 21);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  // Extended: the canvas size, 24 bits each, minus one (RFC 9649, 2.7).
  if (chunk === "VP8X") return { width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
  return undefined;
}

/**
 * An image's format, byte count, width and height, read from its bytes (pure: the caller reads
 * the file). Undefined when the format is one MiniMax reads but its header is cut short or
 * broken; for another format, the facts carry its name and a size of 0 × 0 (refused by
 * `checkImageFacts` for the format first). EXIF orientation is not applied: the rules on the
 * short side and the aspect hold either way round.
 */
export function readImageFacts(bytes: Uint8Array): ImageFacts | undefined {
  const format = sniffImageFormat(bytes);
  const size =
    format === "png"
      ? bytes.length >= 24 && ascii(bytes, 12, 16) === "IHDR"
        ? { width: u32be(bytes, 16), height: u32be(bytes, 20) }
        : undefined
      : format === "jpeg"
        ? jpegSize(bytes)
        : format === "webp"
          ? webpSize(bytes)
          : { width: 0, height: 0 };
  if (!size) return undefined;
  if ((format === "png" || format === "jpeg" || format === "webp") && !(size.width && size.height))
    return undefined;
  return { format, bytes: bytes.length, ...size };
}
