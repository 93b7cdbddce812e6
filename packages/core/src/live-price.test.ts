import { describe, expect, it } from "vitest";
import { livePrice } from "./live-price.js";

// The pricing API's answers, in order: a failure, then the account's price.
function pricingThat(
  ...answers: (Error | { unit_price: number; unit: string; currency: string } | undefined)[]
) {
  let calls = 0;
  return {
    calls: () => calls,
    platform: {
      pricing: async () => {
        const a = answers[Math.min(calls++, answers.length - 1)];
        if (a instanceof Error) throw a;
        return a;
      },
    },
  };
}

describe("livePrice", () => {
  it("a failed look-up is the list price, unverified, and is asked again next time", async () => {
    const client = pricingThat(new Error("HTTP 503"), {
      unit_price: 0.09,
      unit: "second",
      currency: "USD",
    });
    expect(await livePrice(client, "e")).toMatchObject({
      usdPerSecond: 0.045,
      verified: false,
      reason: "HTTP 503",
    });
    expect(await livePrice(client, "e")).toMatchObject({ usdPerSecond: 0.09, verified: true });
    expect(await livePrice(client, "e")).toMatchObject({ usdPerSecond: 0.09, verified: true });
    expect(client.calls()).toBe(2);
  });

  it.each([0, -1, Number.NaN])("a quoted price of %d is not a price", async (unit_price) => {
    expect(
      await livePrice(pricingThat({ unit_price, unit: "second", currency: "USD" }), "e"),
    ).toMatchObject({ verified: false });
  });
});

describe("livePrice per endpoint", () => {
  it("each endpoint is asked once, and a quote in another unit than its record's is not its price", async () => {
    const asked: string[] = [];
    const client = {
      platform: {
        pricing: async (id: string) => {
          asked.push(id);
          return { unit_price: 0.5, unit: "video", currency: "USD" };
        },
      },
    };
    const pro23 = await livePrice(client, "fal-ai/minimax/hailuo-2.3/pro/text-to-video");
    expect(pro23).toMatchObject({ unitPriceUsd: 0.5, unit: "video", verified: true });
    const seed = await livePrice(client, "fal-ai/minimax/hailuo-02/standard/text-to-video");
    expect(seed).toMatchObject({
      usdPerSecond: 0.045,
      unit: "second",
      verified: false,
      reason: "fal quoted 0.5 USD per video",
    });
    await livePrice(client, "fal-ai/minimax/hailuo-2.3/pro/text-to-video");
    expect(asked).toHaveLength(2);
  });
});
