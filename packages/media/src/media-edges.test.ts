import { execFile, spawn } from "node:child_process";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AnimaticRenderer } from "@hailuo/emulator";
import { ffprobeFacts, makeTempDir, TEST_CACHE_DIR, waitFor } from "@hailuo/test-utils";
import { audioBedProblem, concatClips, contactSheet, sheetSize } from "./index.js";

// The edges of the media package: other filesystems, paths that are not what they claim, errors
// with a code. Real ffmpeg on real files.
const run = promisify(execFile);
const root = process.getuid?.() === 0;
let tmp: Awaited<ReturnType<typeof makeTempDir>>;
let tile: string;

beforeAll(async () => {
  tmp = await makeTempDir();
  // One small poster stands for every tile: the sheet's pages are what is tested, not the posters.
  tile = join(tmp.dir, "tile.jpg");
  await run(process.env.FFMPEG_PATH || "ffmpeg", [
    "-v",
    "error",
    "-f",
    "lavfi",
    "-i",
    "color=c=teal:s=160x90",
    "-frames:v",
    "1",
    tile,
  ]);
});
afterAll(() => tmp.cleanup());

/** Scratch folders this package may have left in a folder. */
const scratch = async (dir: string) =>
  (await readdir(dir)).filter((n) => /hailuo-(sheet|concat)-/.test(n));

describe("media across filesystems", () => {
  // A tmpfs mounted as the output folder is another filesystem than the temp folder; mounting needs root (CI is root).
  it.skipIf(!root)(
    "a contact sheet of more than 100 tiles lands on another filesystem than the temp folder, in pages, leaving no scratch folder",
    async () => {
      const out = join(tmp.dir, "tmpfs-out");
      await mkdir(out);
      // This test's own temp folder (os.tmpdir() reads TMPDIR), on the disk, unlike `out`.
      const ownTmp = join(tmp.dir, "own-tmp");
      await mkdir(ownTmp);
      const savedTmp = process.env.TMPDIR;
      process.env.TMPDIR = ownTmp;
      await run("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", out]);
      try {
        const items = Array.from({ length: 101 }, (_, i) => ({ file: tile, label: `s${i} · 6 s` }));
        const made = await contactSheet(items, join(out, "contact-sheet.jpg"));
        expect(made.pages).toEqual([
          join(out, "contact-sheet.jpg"),
          join(out, "contact-sheet-2.jpg"),
        ]);
        const full = sheetSize(100);
        expect(await ffprobeFacts(made.pages[0]!)).toMatchObject({
          width: full.width,
          height: full.height,
        });
        expect((await ffprobeFacts(made.pages[1]!)).width).toBe(full.width);
        expect(await scratch(out)).toEqual([]);
        expect(tmpdir()).toBe(ownTmp);
        expect(await scratch(ownTmp)).toEqual([]);
      } finally {
        if (savedTmp === undefined) delete process.env.TMPDIR;
        else process.env.TMPDIR = savedTmp;
        await run("umount", ["-l", out]);
      }
    },
    60_000,
  );

  it.skipIf(!root)(
    "a sheet into a read-only folder fails with the code unwritable, not a bare errno",
    async () => {
      const out = join(tmp.dir, "ro-out");
      await mkdir(out);
      await run("mount", ["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", out]);
      try {
        const items = Array.from({ length: 101 }, (_, i) => ({ file: tile, label: `s${i}` }));
        await expect(contactSheet(items, join(out, "contact-sheet.jpg"))).rejects.toMatchObject({
          name: "MediaIoError",
          code: "unwritable",
        });
      } finally {
        await run("umount", ["-l", out]);
      }
    },
    30_000,
  );

  it("a sheet into a folder that does not exist fails with the code unwritable, naming the file, not a bare ENOENT", async () => {
    const out = join(tmp.dir, "no-such-folder", "contact-sheet.jpg");
    const error = await contactSheet([{ file: tile, label: "a" }], out).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "MediaIoError", code: "unwritable" });
    expect((error as Error).message).toContain("contact-sheet.jpg");
  });
});

describe("scratch folders a killed process left", () => {
  it("are removed by the next sheet when their process is gone; a live process's stays", async () => {
    const out = join(tmp.dir, "leftovers");
    await mkdir(out);
    // A pid that surely ran and is gone: a child that has exited.
    const dead = spawn(process.execPath, ["-e", ""]);
    await new Promise((resolve) => dead.once("exit", resolve));
    const gone = join(out, `.hailuo-sheet-${dead.pid}-abc123`);
    const running = join(out, `.hailuo-sheet-${process.ppid}-def456`);
    for (const d of [gone, running]) await mkdir(d);
    await writeFile(join(gone, "piece.jpg"), "x");
    await contactSheet([{ file: tile, label: "a" }], join(out, "contact-sheet.jpg"));
    expect((await readdir(out)).sort()).toEqual([
      ".hailuo-sheet-" + process.ppid + "-def456",
      "contact-sheet.jpg",
    ]);
  });
});

describe("audio beds", () => {
  it("refuses a directory, a device, a FIFO and a file that is not audio without opening them; takes a real one", async () => {
    const fifo = join(tmp.dir, "bed.fifo");
    await run("mkfifo", [fifo]);
    const text = join(tmp.dir, "notes.mp3");
    await writeFile(text, "this is not audio\n");
    const bed = join(tmp.dir, "bed.m4a");
    await run(process.env.FFMPEG_PATH || "ffmpeg", [
      "-v",
      "error",
      "-f",
      "lavfi",
      "-i",
      "sine=d=1",
      bed,
    ]);
    // A FIFO opened for reading would block this test until its timeout.
    expect(await audioBedProblem(fifo)).toMatch(/is a FIFO/);
    expect(await audioBedProblem(tmp.dir)).toMatch(/is a directory/);
    expect(await audioBedProblem("/dev/zero")).toMatch(/is a device/);
    expect(await audioBedProblem(text)).toMatch(/no audio stream/);
    expect(await audioBedProblem(join(tmp.dir, "missing.mp3"))).toMatch(/not found/);
    expect(await audioBedProblem(bed)).toBeUndefined();
  });

  it("a film with a FIFO for its audio bed fails at once with assemble_failed, before any encode", async () => {
    const clip = await new AnimaticRenderer(TEST_CACHE_DIR).render({
      prompt: "media edges",
      durationS: 6,
    });
    const fifo = join(tmp.dir, "film-bed.fifo");
    await run("mkfifo", [fifo]);
    const out = join(tmp.dir, "film.mp4");
    await expect(concatClips([clip, clip], out, { audio: { file: fifo } })).rejects.toMatchObject({
      code: "assemble_failed",
      message: expect.stringContaining("FIFO"),
    });
    expect(await scratch(tmp.dir)).toEqual([]);
  });
});

describe("a process that exits mid-film", () => {
  it("leaves no ffmpeg running and no scratch folder (what a second Ctrl-C's process.exit does)", async () => {
    const clip = await new AnimaticRenderer(TEST_CACHE_DIR).render({
      prompt: "media edges exit",
      durationS: 6,
    });
    const dir = join(tmp.dir, "exit-mid-film");
    await mkdir(dir);
    const out = join(dir, "film.mp4");
    // A separate node process runs the film and calls process.exit once a piece is being written.
    const script = `
      import { existsSync, readdirSync } from "node:fs";
      const { concatClips } = await import(${JSON.stringify(join(import.meta.dirname, "../dist/index.js"))});
      const dir = ${JSON.stringify(dir)};
      setInterval(() => {
        const work = readdirSync(dir).find((n) => n.startsWith(".hailuo-concat-"));
        if (work && readdirSync(dir + "/" + work).some((n) => n.startsWith("piece-"))) process.exit(130);
      }, 10);
      await concatClips(Array(4).fill(${JSON.stringify(clip)}), ${JSON.stringify(out)}, { transitions: { type: "fade", durationS: 0.5 }, preset: "veryslow" });
      process.exit(0);`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: "ignore",
    });
    const code = await new Promise<number | null>((done) => child.on("exit", done));
    expect(code).toBe(130);
    // No live ffmpeg still writing into this folder (a killed one may linger as a zombie: not running).
    const live = async () => {
      const found: string[] = [];
      for (const pid of (await readdir("/proc")).filter((p) => /^\d+$/.test(p))) {
        const [cmd, stat] = await Promise.all([
          readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => ""),
          readFile(`/proc/${pid}/stat`, "utf8").catch(() => ""),
        ]);
        if (cmd.includes(dir) && !/\) Z /.test(stat)) found.push(cmd);
      }
      return found;
    };
    await waitFor(async () => (await live()).length === 0, 5_000);
    expect(await scratch(dir)).toEqual([]);
    expect(await readdir(dir)).toEqual([]);
  }, 60_000);
});
