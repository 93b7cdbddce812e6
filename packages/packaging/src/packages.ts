// Finds the workspace's public packages, packs them as `pnpm publish` would and checks each
// tarball the way a registry user meets it: publint, arethetypeswrong, and the files a package
// page needs. Shared by `pnpm check:packages` (and so `pnpm release`) and the install test.
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { checkPackage, createPackageFromTarballData, type Package } from "@arethetypeswrong/core";
import { publint } from "publint";
import { formatMessage } from "publint/utils";

const run = promisify(execFile);

/** The monorepo's root folder (this file sits in packages/packaging/{src,dist}). */
export const WORKSPACE_ROOT = join(dirname(fileURLToPath(import.meta.url)), "../../..");

/** A workspace package that publishes. */
export interface PublicPackage {
  name: string;
  dir: string;
}

/** A public package packed into a tarball. */
export interface PackedPackage extends PublicPackage {
  tarball: string;
}

/** Every package under packages/ and apps/ that is not private, by name. */
export function publicPackages(root = WORKSPACE_ROOT): PublicPackage[] {
  const found: PublicPackage[] = [];
  for (const parent of ["packages", "apps"]) {
    for (const entry of readdirSync(join(root, parent), { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const dir = join(root, parent, entry.name);
      let pkg: { name: string; private?: boolean };
      try {
        pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
      } catch {
        continue;
      }
      if (!pkg.private) found.push({ name: pkg.name, dir });
    }
  }
  return found.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Packs each package with `pnpm pack` into `dest` (pnpm rewrites `workspace:*` to the version,
 * as `pnpm publish` does). Packages must be built first.
 */
export async function packPublicPackages(
  dest: string,
  packages = publicPackages(),
): Promise<PackedPackage[]> {
  return Promise.all(
    packages.map(async (p) => {
      const { stdout } = await run("pnpm", ["pack", "--json", "--pack-destination", dest], {
        cwd: p.dir,
      });
      const { filename } = JSON.parse(stdout.slice(stdout.indexOf("{"))) as { filename: string };
      return { ...p, tarball: filename.startsWith("/") ? filename : join(dest, filename) };
    }),
  );
}

// esm-only, as arethetypeswrong's profile of that name: Node >= 20.19 requires ESM, so the
// resolutions of old CommonJS resolvers are not judged.
const IGNORED_RESOLUTIONS = new Set(["node10", "node16-cjs"]);

/** What arethetypeswrong finds, as lines (its library: one TypeScript for every tarball). */
async function attwProblems(pkg: Package): Promise<string[]> {
  // A tarball's package, so no DefinitelyTyped lookups: those reach the registry.
  const analysis = await checkPackage(pkg);
  if (!analysis.types) return ["attw: ships no types"];
  type Found = { kind: string; entrypoint?: string; resolutionKind?: string };
  return (analysis.problems as Found[])
    .filter((p) => !IGNORED_RESOLUTIONS.has(p.resolutionKind ?? ""))
    .map(
      (p) => `attw: ${p.kind} (${p.entrypoint ?? "?"}, ${p.resolutionKind ?? "any resolution"})`,
    );
}

/** What a package page and an install need besides code: read from the tarball's files. */
function missingFaceParts(pkg: Package): string[] {
  const root = `/node_modules/${pkg.packageName}`;
  const files = new Set(pkg.listFiles().map((f) => f.slice(root.length + 1)));
  const manifest = JSON.parse(pkg.readFile(`${root}/package.json`)) as Record<string, unknown>;
  const problems: string[] = [];
  for (const file of ["README.md", "LICENSE"]) if (!files.has(file)) problems.push(`no ${file}`);
  for (const field of [
    "description",
    "repository",
    "license",
    "homepage",
    "keywords",
    "engines",
    "exports",
  ]) {
    if (!manifest[field]) problems.push(`package.json has no ${field}`);
  }
  if ((manifest.publishConfig as { access?: string } | undefined)?.access !== "public") {
    problems.push(
      "publishConfig.access is not public (a scoped package would publish as restricted)",
    );
  }
  const shipped = [...files];
  for (const map of shipped.filter((f) => f.endsWith(".map"))) {
    const text = pkg.readFile(`${root}/${map}`);
    for (const source of (JSON.parse(text) as { sources: string[] }).sources) {
      const target = join(dirname(map), source);
      if (!files.has(target)) problems.push(`${map} names ${source}, which is not shipped`);
    }
  }
  if (shipped.some((f) => /\.test\.(ts|js|d\.ts)$/.test(f))) problems.push("ships test files");
  return problems;
}

/** Every problem publint, arethetypeswrong and the face check find in one tarball, as lines. */
export async function checkTarball(tarball: string): Promise<string[]> {
  const buffer = await readFile(tarball);
  const tarData = buffer.buffer.slice(
    buffer.byteOffset,
    buffer.byteOffset + buffer.byteLength,
  ) as ArrayBuffer;
  const lint = await publint({ pack: { tarball: tarData }, level: "warning", strict: true });
  const lintLines = lint.messages.map(
    (m) => `publint ${m.type}: ${formatMessage(m, lint.pkg) ?? m.code}`,
  );
  const pkg = createPackageFromTarballData(new Uint8Array(tarData));
  return [...lintLines, ...(await attwProblems(pkg)), ...missingFaceParts(pkg)];
}
