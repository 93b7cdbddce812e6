import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startTestEmulator, makeTempDir, waitFor } from "@hailuo/test-utils";
import { createHailuoClient, downloadVideo } from "./index.js";

// Downloads of paid clips: never a partial file at the path, never a silently truncated one.

describe("downloadVideo", () => {
  it("a short write (a disk filling up) is completed or fails naming the path: never a truncated clip", async () => {
    const emu = await startTestEmulator({ render: "shared" });
    const tmp = await makeTempDir();
    try {
      const client = createHailuoClient({ emulatorUrl: emu.url });
      const { output } = await client.generate({ prompt: "short writes" });
      // The OS takes at most 1000 bytes per write: every byte must still land.
      const whole = await downloadVideo(output.video.url, join(tmp.dir, "whole.mp4"), {
        expectedBytes: output.video.file_size,
        write: async (file, buf, pos) =>
          (await file.write(buf, 0, Math.min(buf.length, 1000), pos)).bytesWritten,
      });
      expect((await stat(whole.path)).size).toBe(output.video.file_size);
      // Then the disk is full: a short write, then ENOSPC.
      let written = 0;
      const target = join(tmp.dir, "full.mp4");
      const err = await downloadVideo(output.video.url, target, {
        write: async (file, buf, pos) => {
          if (written > 8_000)
            throw Object.assign(new Error("ENOSPC: no space left on device, write"), {
              code: "ENOSPC",
            });
          const n = (await file.write(buf, 0, Math.min(buf.length, 4096), pos)).bytesWritten;
          written += n;
          return n;
        },
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "disk_full", retryable: false });
      expect((err as Error).message).toContain(target);
      expect(existsSync(target)).toBe(false);
      expect((await readdir(tmp.dir)).sort()).toEqual(["whole.mp4"]);
    } finally {
      await emu.close();
      await tmp.cleanup();
    }
  });

  it("never leaves a file at the path when the transfer is cut off", async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-length": "100000", "content-type": "video/mp4" });
      res.write(Buffer.alloc(5000));
      setTimeout(() => res.destroy(), 20);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const tmp = await makeTempDir();
    try {
      const target = join(tmp.dir, "cut.mp4");
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x.mp4`;
      await expect(downloadVideo(url, target)).rejects.toMatchObject({
        code: "download",
        retryable: true,
      });
      expect(existsSync(target)).toBe(false);
      expect(await readdir(tmp.dir)).toEqual([]);
    } finally {
      server.close();
      await tmp.cleanup();
    }
  });

  it("a body that stalls fails as download_stalled (retryable) after the idle timeout, leaving no file", async () => {
    const emu = await startTestEmulator({
      render: "shared",
      faults: { files: [{ kind: "stall", count: 1, bytes: 8_000 }] },
    });
    const tmp = await makeTempDir();
    try {
      const { output } = await createHailuoClient({ emulatorUrl: emu.url }).generate({
        prompt: "stalls",
      });
      const target = join(tmp.dir, "stall.mp4");
      const err = await downloadVideo(output.video.url, target, { idleTimeoutMs: 300 }).catch(
        (e: unknown) => e,
      );
      expect(err).toMatchObject({
        code: "download_stalled",
        retryable: true,
        details: { bytes: 8_000, idleTimeoutMs: 300 },
      });
      expect(await readdir(tmp.dir)).toEqual([]);
      // The stall fired once: the same URL downloads whole the next time (at the default idle
      // timeout: a pause of a loaded machine is no stall).
      const again = await downloadVideo(output.video.url, target, {
        expectedBytes: output.video.file_size,
      });
      expect(again.bytes).toBe(output.video.file_size);
      expect(emu.stats().faultsInjected["file:stall"]).toBe(1);
    } finally {
      await emu.close();
      await tmp.cleanup();
    }
  });

  it("a slow body that keeps sending is not a stall: the idle clock restarts with every chunk", async () => {
    const chunks = 8;
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-length": String(chunks * 1000), "content-type": "video/mp4" });
      let sent = 0;
      const drip = setInterval(() => {
        res.write(Buffer.alloc(1000, sent));
        if (++sent === chunks) {
          clearInterval(drip);
          res.end();
        }
      }, 150);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const tmp = await makeTempDir();
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x.mp4`;
      // 8 chunks 150 ms apart take longer than one idle timeout, yet no gap reaches it.
      const got = await downloadVideo(url, join(tmp.dir, "slow.mp4"), { idleTimeoutMs: 1000 });
      expect(got.bytes).toBe(chunks * 1000);
    } finally {
      server.close();
      await tmp.cleanup();
    }
  });

  it("a response that never starts is a stall too", async () => {
    const server = createServer(() => {});
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const tmp = await makeTempDir();
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x.mp4`;
      await expect(
        downloadVideo(url, join(tmp.dir, "never.mp4"), { idleTimeoutMs: 200 }),
      ).rejects.toMatchObject({ code: "download_stalled", retryable: true, details: { bytes: 0 } });
      expect(await readdir(tmp.dir)).toEqual([]);
    } finally {
      server.closeAllConnections();
      server.close();
      await tmp.cleanup();
    }
  });

  it("a caller's abort stays an abort, not a stall", async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-length": "100000" });
      res.write(Buffer.alloc(1000));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const tmp = await makeTempDir();
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x.mp4`;
      const stop = new AbortController();
      const pending = downloadVideo(url, join(tmp.dir, "aborted.mp4"), {
        idleTimeoutMs: 60_000,
        signal: stop.signal,
      });
      await waitFor(async () => (await readdir(tmp.dir)).length > 0);
      stop.abort();
      await expect(pending).rejects.toMatchObject({ code: "cancelled" });
      expect(await readdir(tmp.dir)).toEqual([]);
    } finally {
      server.closeAllConnections();
      server.close();
      await tmp.cleanup();
    }
  });
});
