import { describe, expect, it } from "vitest";
import type { ErrorCode } from "@hailuo/shared";
import { classifyFailure, type FailureAction, type ItemStage } from "./classify.js";

const table: [ErrorCode, boolean, ItemStage, boolean, FailureAction][] = [
  // code, retryable, stage, tries left → action
  ["auth", false, "submit", true, { kind: "stop_run" }],
  ["disk_full", false, "save", true, { kind: "stop_run" }],
  ["unwritable", false, "save", true, { kind: "stop_run" }],
  ["ffmpeg_missing", false, "save", true, { kind: "stop_run" }],
  ["content_policy", false, "result", true, { kind: "give_up", keepLive: false }],
  ["validation", false, "submit", true, { kind: "give_up", keepLive: false }],
  ["budget", false, "submit", true, { kind: "give_up", keepLive: false }],
  ["timeout", true, "wait", true, { kind: "give_up", keepLive: true }],
  ["generation_failed", true, "result", true, { kind: "resubmit", ambiguous: false }],
  ["generation_failed", true, "result", false, { kind: "give_up", keepLive: false }],
  ["submit_ambiguous", true, "submit", true, { kind: "resubmit", ambiguous: true }],
  ["submit_ambiguous", true, "submit", false, { kind: "give_up", keepLive: false }],
  ["rate_limited", true, "submit", true, { kind: "resubmit", ambiguous: false }],
  ["network", true, "submit", true, { kind: "resubmit", ambiguous: false }],
  ["server", true, "wait", true, { kind: "retry_request" }],
  ["server", true, "result", true, { kind: "retry_request" }],
  ["server", true, "result", false, { kind: "give_up", keepLive: true }],
  ["not_found", false, "wait", true, { kind: "resubmit", ambiguous: false }],
  ["download", true, "save", true, { kind: "retry_request" }],
  ["verify", true, "save", true, { kind: "retry_request" }],
  ["download", true, "save", false, { kind: "give_up", keepLive: false }],
  ["internal", false, "save", true, { kind: "give_up", keepLive: false }],
];

describe("classifyFailure", () => {
  it.each(table)(
    "%s (retryable %s) during %s, tries left %s",
    (code, retryable, stage, triesLeft, action) => {
      expect(classifyFailure({ code, retryable }, stage, triesLeft)).toEqual(action);
    },
  );

  it("never answers a paid stage (result fetched, saving) with a new submit", () => {
    const codes: ErrorCode[] = [
      "download",
      "verify",
      "disk_full",
      "unwritable",
      "internal",
      "server",
      "network",
      "timeout",
    ];
    for (const code of codes)
      for (const retryable of [true, false])
        for (const left of [true, false]) {
          expect(classifyFailure({ code, retryable }, "save", left).kind).not.toBe("resubmit");
        }
  });
});
