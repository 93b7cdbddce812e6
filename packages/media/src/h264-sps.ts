// The few facts of an H.264 sequence parameter set that ffprobe reports and an MP4's boxes do not:
// the cropped picture size and the colour range (full range is what ffprobe calls yuvj420p).
// Hand-written because no maintained npm package reads an SPS as far as its VUI colour flags
// (mux.js, the closest, stops at the aspect ratio); the syntax is ITU-T H.264 §7.3.2.1.1.

/** What `readSps` tells. */
export interface SpsFacts {
  profileIdc: number;
  /** constraint_set0…5 flags, bit 0 = set0. */
  constraints: number;
  /** 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4. */
  chromaFormat: number;
  bitDepth: number;
  width: number;
  height: number;
  fullRange: boolean;
}

// Profiles whose SPS carries chroma format, bit depths and scaling lists (H.264 §7.3.2.1.1).
const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

/** Reads bits MSB first from an RBSP (emulation-prevention bytes already removed). */
class Bits {
  private pos = 0;
  constructor(private readonly bytes: Uint8Array) {}
  u(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++, this.pos++) {
      const byte = this.bytes[this.pos >> 3];
      if (byte === undefined) throw new RangeError("SPS ends early");
      v = v * 2 + ((byte >> (7 - (this.pos & 7))) & 1);
    }
    return v;
  }
  /** Unsigned Exp-Golomb. */
  ue(): number {
    let zeros = 0;
    while (this.u(1) === 0) if (++zeros > 31) throw new RangeError("bad Exp-Golomb code");
    return 2 ** zeros - 1 + this.u(zeros);
  }
  /** Signed Exp-Golomb. */
  se(): number {
    const k = this.ue();
    return k % 2 ? (k + 1) / 2 : -k / 2;
  }
}

/** The NAL unit's payload without its header byte and emulation-prevention bytes (00 00 03 → 00 00). */
function rbsp(nal: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let i = 1; i < nal.length; i++) {
    if (nal[i] === 3 && i >= 3 && nal[i - 1] === 0 && nal[i - 2] === 0 && out.length >= 2) continue;
    out.push(nal[i]!);
  }
  return Uint8Array.from(out);
}

/**
 * Reads an SPS NAL unit (header byte included). `undefined` for what this reader leaves to
 * ffprobe: scaling matrices, or an SPS that is cut short or malformed.
 */
export function readSps(nal: Uint8Array): SpsFacts | undefined {
  if ((nal[0]! & 0x1f) !== 7) return undefined;
  try {
    const b = new Bits(rbsp(nal));
    const profileIdc = b.u(8);
    const flags = b.u(8);
    b.u(8); // level_idc
    b.ue(); // seq_parameter_set_id
    let chromaFormat = 1;
    let bitDepth = 8;
    let separatePlanes = 0;
    if (HIGH_PROFILES.has(profileIdc)) {
      chromaFormat = b.ue();
      if (chromaFormat === 3) separatePlanes = b.u(1);
      bitDepth = 8 + b.ue();
      b.ue(); // bit_depth_chroma_minus8
      b.u(1); // qpprime_y_zero_transform_bypass_flag
      if (b.u(1)) return undefined; // seq_scaling_matrix_present_flag
    }
    b.ue(); // log2_max_frame_num_minus4
    const pocType = b.ue();
    if (pocType === 0) b.ue();
    else if (pocType === 1) {
      b.u(1);
      b.se();
      b.se();
      for (let n = b.ue(), i = 0; i < n; i++) b.se();
    }
    b.ue(); // max_num_ref_frames
    b.u(1); // gaps_in_frame_num_value_allowed_flag
    const widthMbs = b.ue() + 1;
    const heightUnits = b.ue() + 1;
    const frameMbsOnly = b.u(1);
    if (!frameMbsOnly) b.u(1);
    b.u(1); // direct_8x8_inference_flag
    const crop = b.u(1) ? [b.ue(), b.ue(), b.ue(), b.ue()] : [0, 0, 0, 0];
    // Crop units (H.264 Table 6-1 and §7.4.2.1.1): chroma subsampling, doubled for field coding.
    const arrayType = separatePlanes ? 0 : chromaFormat;
    const unitX = arrayType === 1 || arrayType === 2 ? 2 : 1;
    const unitY = (arrayType === 1 ? 2 : 1) * (2 - frameMbsOnly);
    let fullRange = false;
    if (b.u(1)) {
      if (b.u(1) && b.u(8) === 255) b.u(32); // aspect_ratio_idc, Extended_SAR
      if (b.u(1)) b.u(1); // overscan
      if (b.u(1)) {
        b.u(3); // video_format
        fullRange = b.u(1) === 1;
      }
    }
    return {
      profileIdc,
      constraints:
        ((flags >> 7) & 1) |
        (((flags >> 6) & 1) << 1) |
        (((flags >> 5) & 1) << 2) |
        (((flags >> 4) & 1) << 3) |
        (((flags >> 3) & 1) << 4) |
        (((flags >> 2) & 1) << 5),
      chromaFormat,
      bitDepth,
      width: widthMbs * 16 - unitX * (crop[0]! + crop[1]!),
      height: heightUnits * 16 * (2 - frameMbsOnly) - unitY * (crop[2]! + crop[3]!),
      fullRange,
    };
  } catch {
    return undefined;
  }
}
