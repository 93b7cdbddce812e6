import { open } from "node:fs/promises";
import type { ISOFile, Movie } from "mp4box";
import { readSps } from "./h264-sps.js";
import type { VideoInfo } from "./probe.js";

const CHUNK = 1 << 20;
// ffmpeg's names for the H.264 profiles read here (libavcodec/profiles.c); others go to ffprobe.
const PROFILES: Record<number, string> = { 66: "Baseline", 77: "Main", 100: "High" };

/** a/b reduced, as ffprobe prints a rational. */
function rational(a: number, b: number): string {
  let [x, y] = [a, b];
  while (y) [x, y] = [y, x % y];
  return `${a / x}/${b / x}`;
}

/**
 * Runs mp4box quietly: it tells what it cannot parse with console.error at any log level, and the
 * verdict on such a file is ffprobe's to give. Its parsing is synchronous: nothing else logs meanwhile.
 */
function quietly<T>(parse: () => T): T {
  const error = console.error;
  console.error = () => {};
  try {
    return parse();
  } finally {
    console.error = error;
  }
}

/** Feeds the file to mp4box from wherever it asks to read next (it skips mdat), until the movie box is read. */
async function readMovie(
  file: string,
  size: number,
): Promise<{ iso: ISOFile; movie: Movie } | undefined> {
  const { createFile, MP4BoxBuffer } = await import("mp4box");
  const iso = createFile();
  let movie: Movie | undefined;
  let failed = false;
  iso.onReady = (m) => (movie = m);
  iso.onError = () => (failed = true);
  const handle = await open(file, "r");
  try {
    for (let pos = 0; !movie && !failed && pos < size;) {
      const buf = new ArrayBuffer(Math.min(CHUNK, size - pos));
      const { bytesRead } = await handle.read(new Uint8Array(buf), 0, buf.byteLength, pos);
      if (!bytesRead) break;
      const next = quietly(() =>
        iso.appendBuffer(MP4BoxBuffer.fromArrayBuffer(buf, pos), pos + bytesRead >= size),
      );
      pos = next > pos ? next : pos + bytesRead;
    }
  } finally {
    await handle.close();
  }
  return movie && !failed ? { iso, movie } : undefined;
}

/** What a file's MP4 boxes say: its facts, when read exactly as ffprobe would, and where its samples end. */
export interface Mp4Read {
  /** ffprobe's facts (see `mp4Facts`); absent for anything not read in-process. */
  facts?: VideoInfo;
  /**
   * The byte just past the last sample of any track, from the sample tables (stco/co64 offsets,
   * stsc chunks, stsz sizes): more than the file's size means the file was cut short. `NaN` when
   * a table points nowhere (fewer chunk offsets than chunks); absent when no track has a sample table.
   */
  samplesEndByte?: number;
}

/** The byte past the last sample of every track mp4box built a sample list for (fragments have none). */
function samplesEnd(iso: ISOFile, movie: Movie): number | undefined {
  let end: number | undefined;
  for (const t of movie.tracks) {
    for (const s of iso.getTrackSamplesInfo(t.id) ?? [])
      end = Math.max(end ?? 0, s.offset + s.size);
  }
  return end;
}

/**
 * Reads a file's MP4 boxes once (mdat is skipped: a few reads of the file's ends): `undefined`
 * when it is no MP4 mp4box can read.
 */
export async function readMp4(file: string, sizeBytes: number): Promise<Mp4Read | undefined> {
  const read = await readMovie(file, sizeBytes).catch(() => undefined);
  if (!read) return undefined;
  return {
    facts: factsOf(read.iso, read.movie, sizeBytes),
    samplesEndByte: samplesEnd(read.iso, read.movie),
  };
}

/**
 * The facts ffprobe gives of a clip, read from its MP4 boxes and H.264 parameters in-process (a
 * few milliseconds where an ffprobe start costs ~60 ms of CPU, most of it loading its libraries).
 * Only for what it reads exactly as ffprobe does: one H.264 video track (Baseline, Main or High,
 * 8-bit 4:2:0) at a constant frame rate and no audio. `undefined` for anything else, which
 * `probe` hands to ffprobe; media.test.ts compares both on clips of every kind.
 */
export async function mp4Facts(file: string, sizeBytes: number): Promise<VideoInfo | undefined> {
  return (await readMp4(file, sizeBytes))?.facts;
}

function factsOf(iso: ISOFile, movie: Movie, sizeBytes: number): VideoInfo | undefined {
  const track = movie.videoTracks[0];
  if (
    !track ||
    movie.audioTracks.length ||
    movie.isFragmented ||
    !(movie.duration > 0) ||
    !/^avc[13]\./.test(track.codec)
  )
    return undefined;
  const stbl = iso.getTrackById(track.id)?.mdia?.minf?.stbl;
  const stts = stbl?.stts;
  const entry = stbl?.stsd?.entries[0] as
    { width?: number; height?: number; avcC?: { SPS: { data: Uint8Array }[] } } | undefined;
  const nal = entry?.avcC?.SPS[0]?.data;
  // One sample duration throughout: ffprobe's frame rate is then timescale / duration (libavformat/mov.c).
  if (!stts || stts.sample_deltas.length !== 1 || !stts.sample_deltas[0] || !nal) return undefined;
  const sps = readSps(nal);
  const profile = sps && PROFILES[sps.profileIdc];
  if (
    !sps ||
    !profile ||
    sps.chromaFormat !== 1 ||
    sps.bitDepth !== 8 ||
    sps.width !== entry.width ||
    sps.height !== entry.height
  )
    return undefined;
  const rate = rational(track.timescale, stts.sample_deltas[0]);
  return {
    // ffprobe's format duration: the movie header's, in whole microseconds.
    durationS: Math.round((movie.duration * 1e6) / movie.timescale) / 1e6,
    width: sps.width,
    height: sps.height,
    fps: track.timescale / stts.sample_deltas[0],
    fpsRational: rate,
    codec: "h264",
    // Full range is what ffmpeg's H.264 decoder calls yuvj420p.
    pixFmt: sps.fullRange ? "yuvj420p" : "yuv420p",
    profile: sps.profileIdc === 66 && sps.constraints & 2 ? "Constrained Baseline" : profile,
    timeBase: `1/${track.timescale}`,
    sizeBytes,
    hasAudio: false,
  };
}
