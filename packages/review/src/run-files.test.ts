import { describe, expect, it } from "vitest";
import { byteRange, filePathOf } from "./run-files.js";

describe("byteRange", () => {
  it.each([
    [undefined, 100, "all"],
    ["bytes=0-", 100, { start: 0, end: 99 }],
    ["bytes=10-19", 100, { start: 10, end: 19 }],
    ["bytes=90-500", 100, { start: 90, end: 99 }],
    ["bytes=-10", 100, { start: 90, end: 99 }],
    ["bytes=-500", 100, { start: 0, end: 99 }],
    ["bytes=100-", 100, undefined],
    ["bytes=20-10", 100, undefined],
    ["bytes=-0", 100, undefined],
    ["bytes=0-1,5-6", 100, "all"],
    ["items=0-1", 100, "all"],
  ] as const)("%s of %i bytes", (header, size, want) => {
    expect(byteRange(header, size)).toEqual(want);
  });
});

describe("filePathOf", () => {
  it.each([
    ["clips/a.mp4", ["clips", "a.mp4"]],
    ["thumbs/a%20b.jpg", ["thumbs", "a b.jpg"]],
    ["", undefined],
    ["clips//a.mp4", undefined],
    ["../x", undefined],
    ["%2e%2e/x", undefined],
    ["clips/.", undefined],
    ["a%2Fb", undefined],
    ["a%5Cb", undefined],
    ["a%00", undefined],
    ["%E0%A4%A", undefined],
  ] as const)("%s", (path, want) => {
    expect(filePathOf(path)).toEqual(want);
  });
});
