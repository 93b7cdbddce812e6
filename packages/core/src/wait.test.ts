import { describe, expect, it } from "vitest";
import { heldClock, startTestEmulator } from "@hailuo/test-utils";
import { createHailuoClient } from "./index.js";

describe("waiting for a request", () => {
  it("hears a stop that comes while its status stream is being opened", async () => {
    // Held: the request never finishes, so only the stop can end the wait.
    const emu = await startTestEmulator({ render: "shared", clock: heldClock().clock });
    try {
      const stop = new AbortController();
      const client = createHailuoClient({
        emulatorUrl: emu.url,
        // The stop comes as the stream's request leaves: before the stream exists to be stopped.
        fetch: (input, init) => {
          if (String(input instanceof Request ? input.url : input).includes("/status/stream"))
            stop.abort();
          return fetch(input, init);
        },
      });
      const handle = await client.submit({ prompt: "stopped while the stream opens" });
      await expect(
        client.wait(handle, { signal: stop.signal, mode: "stream" }),
      ).rejects.toMatchObject({ code: "cancelled" });
    } finally {
      await emu.close();
    }
  }, 15_000);
});
