import { describe, expect, it } from "vitest";
import { numberOption } from "./options.js";

describe("numberOption: plain decimals only", () => {
  it.each([
    ["0x10", false],
    ["1e3", false],
    ["0b1", false],
    [" 5", false],
    ["5 ", false],
    ["", false],
    ["-1", false],
    ["Infinity", false],
    ["1.", false],
    ["1,5", false],
  ])("--budget %j is refused", (value) => {
    expect(() => numberOption("budget", value, { integer: false })).toThrow(
      /--budget must be a plain decimal number/,
    );
  });

  it.each([
    ["16", 16],
    ["1.62", 1.62],
    [".5", 0.5],
    ["0", 0],
  ])("--budget %j reads as %d", (value, n) => {
    expect(numberOption("budget", value, { integer: false })).toBe(n);
  });

  it("a whole-number flag refuses a fraction and an exponent, and names its minimum", () => {
    expect(() => numberOption("concurrency", "1.5", { min: 1 })).toThrow(
      '--concurrency must be a whole number ≥ 1, got "1.5"',
    );
    expect(() => numberOption("retries", "1e1")).toThrow(/whole number/);
    expect(numberOption("retries", "8")).toBe(8);
  });
});
