#!/usr/bin/env node
// `pnpm check:packages`: packs every public package and fails when any tarball has a problem a
// user would meet (publint, arethetypeswrong, README/LICENSE/metadata). `pnpm release` runs it.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkTarball, packPublicPackages } from "./packages.js";

const dest = await mkdtemp(join(tmpdir(), "hailuo-check-packages-"));
try {
  const packed = await packPublicPackages(dest);
  let bad = 0;
  for (const p of packed) {
    const problems = await checkTarball(p.tarball);
    bad += problems.length > 0 ? 1 : 0;
    console.log(
      problems.length === 0
        ? `ok   ${p.name}`
        : `FAIL ${p.name}\n${problems.map((l) => `     ${l}`).join("\n")}`,
    );
  }
  console.log(`${packed.length - bad} of ${packed.length} packages clean`);
  process.exitCode = bad === 0 ? 0 : 1;
} finally {
  await rm(dest, { recursive: true, force: true });
}
