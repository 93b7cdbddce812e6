import { expect, it } from "vitest";

// Its own file: ensureFfmpeg remembers a successful check for the rest of the process.
it("a missing ffmpeg gives one clear error that says how to install it", async () => {
  process.env.FFMPEG_PATH = "/nonexistent/ffmpeg";
  try {
    const { ensureFfmpeg, probe } = await import("./index.js");
    await expect(ensureFfmpeg()).rejects.toMatchObject({ code: "ffmpeg_missing", retryable: false, message: expect.stringContaining("apt-get install -y ffmpeg") });
    await expect(probe("/dev/null")).rejects.toMatchObject({ code: "ffmpeg_missing" });
  } finally {
    delete process.env.FFMPEG_PATH;
  }
});
