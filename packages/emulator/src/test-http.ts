// What the emulator's own tests share: their emulator, and what they send and read over HTTP as
// fal's clients do. (test-utils depends on this package, so these live here.)
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEmulator, type Emulator, type EmulatorOptions } from "./index.js";

/** An emulator whose renders are cached where every test process finds them. */
export const startTestEmulator = (o: EmulatorOptions): Promise<Emulator> =>
  createEmulator({ cacheDir: join(tmpdir(), "hailuo-test-emulator-cache"), ...o });

/** The headers of a request to the emulator (any key is accepted). */
export const auth = { authorization: "Key test", "content-type": "application/json" };

/** A response's JSON, untyped: the tests check its shape themselves. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const body = async (res: Response): Promise<any> => res.json();

/**
 * Polls a request's status until it is COMPLETED and returns that status, at an interval as fal's
 * clients poll: a busy loop of requests would starve the render it waits for.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function untilCompleted(statusUrl: string): Promise<any> {
  for (;;) {
    const st = await body(await fetch(statusUrl, { headers: auth }));
    if (st.status === "COMPLETED") return st;
    await new Promise((ok) => setTimeout(ok, 25));
  }
}
