import { expect } from "vitest";
import { ManifestError, parseManifest } from "./index.js";

/** The problems a manifest text is refused with, as `line:col field: message` (test helper). */
export function problemsOf(
  text: string,
  file = "story.yaml",
  now = new Date(2026, 10, 24, 9, 30),
): string[] {
  try {
    parseManifest(text, { file, now });
  } catch (error) {
    expect(error).toBeInstanceOf(ManifestError);
    return (error as ManifestError).problems.map(
      (p) => `${p.line ?? "-"}:${p.column ?? "-"} ${p.field}: ${p.message}`,
    );
  }
  throw new Error("expected a ManifestError");
}
