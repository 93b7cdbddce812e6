import { describe, expect, it } from "vitest";
import { estimateCost, normalizeHailuoInput, checkHailuoInput } from "./index.js";

describe("input", () => {
  it("normalises numbers and fills defaults", () => {
    expect(normalizeHailuoInput({ prompt: "a", duration: 10 })).toEqual({
      prompt: "a",
      duration: "10",
      prompt_optimizer: true,
    });
    expect(normalizeHailuoInput({ prompt: "a" })).toEqual({
      prompt: "a",
      duration: "6",
      prompt_optimizer: true,
    });
  });
  it("flags unknown fields and counts characters, not UTF-16 units", () => {
    expect(checkHailuoInput({ prompt: "a", seed: 3 }).map((p) => p.field)).toEqual(["seed"]);
    expect(checkHailuoInput({ prompt: "🎬".repeat(2000) })).toEqual([]);
  });
  it("prices $0.045 per second", () => {
    expect(estimateCost({ duration: "6" })).toEqual({ seconds: 6, usd: 0.27 });
    expect(estimateCost({ duration: 10 })).toEqual({ seconds: 10, usd: 0.45 });
  });
});
