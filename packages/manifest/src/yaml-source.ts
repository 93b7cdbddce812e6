import type { Document, Node } from "yaml";
import { yaml } from "./parsers.js";
import { ManifestError } from "./manifest-error.js";
import type { Manifest } from "./manifest-types.js";
import { FieldChecker, type Locate, type Path } from "./field-checker.js";
import type { ParseOptions } from "./manifest-limits.js";
import { TOP_KEYS, validate, type RawScene } from "./validate-manifest.js";

/**
 * Parses YAML text safely (duplicate keys and syntax errors refused with positions, alias
 * expansion bounded) and returns the data with a function that finds any path's line and column.
 */
export function readYamlSource(text: string, file: string): { data: unknown; locate: Locate } {
  const { isMap, isNode, isPair, isScalar, LineCounter, parseDocument } = yaml();
  const lineCounter = new LineCounter();
  const doc: Document = parseDocument(text, {
    lineCounter,
    uniqueKeys: true,
    prettyErrors: false,
    strict: true,
  });
  const pos = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const errors = [...doc.errors, ...doc.warnings];
  if (errors.length > 0) {
    throw new ManifestError(
      file,
      errors.map((e) => ({
        file,
        field: "",
        message: e.message.split("\n")[0]!,
        ...pos(e.pos[0]),
      })),
    );
  }
  let data: unknown;
  try {
    // Aliases are legal YAML, but a "billion laughs" document expands them exponentially.
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new ManifestError(file, [
      {
        file,
        field: "",
        message: `refused: ${(error as Error).message} (YAML alias expansion is limited)`,
      },
    ]);
  }
  const keyPos = (path: Path) => {
    const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
    if (!isMap(parent)) return undefined;
    const pair = parent.items.find(
      (p) => isPair(p) && isScalar(p.key) && p.key.value === path[path.length - 1],
    );
    return pair && isScalar(pair.key) && pair.key.range ? pos(pair.key.range[0]) : undefined;
  };
  const locate: Locate = (path, key) => {
    const k = key && path.length > 0 ? keyPos(path) : undefined;
    if (k) return k;
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true) as unknown;
      if (isNode(node) && (node as Node).range) return pos((node as Node).range![0]);
      // A key with an empty value: point at the key itself.
      const atKey =
        n > 0 && (node === null || node === undefined) ? keyPos(path.slice(0, n)) : undefined;
      if (atKey) return atKey;
    }
    return {};
  };
  return { data, locate };
}

/** A YAML manifest. */
export function parseYaml(text: string, options: ParseOptions, file: string): Manifest {
  const { data, locate } = readYamlSource(text, file);
  return manifestFromData(data, locate, { ...options, file });
}

/**
 * Validates an already-parsed YAML manifest (for example one written inline in a job file);
 * `locate` maps its paths to source positions.
 */
export function manifestFromData(
  data: unknown,
  locate: Locate,
  options: ParseOptions & { file: string },
): Manifest {
  const file = options.file;
  const c = new FieldChecker(file, locate);
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    c.add([], "a YAML manifest is a mapping with at least `scenes:`");
    throw new ManifestError(file, c.problems);
  }
  const root = data as Record<string, unknown>;
  c.keys(root, [], TOP_KEYS);
  let raw: RawScene[] | undefined;
  if (root.scenes !== undefined && !Array.isArray(root.scenes))
    c.add(["scenes"], "scenes must be a list");
  else
    raw = (root.scenes as unknown[] | undefined)?.flatMap((s, i) => {
      const path = ["scenes", i];
      if (typeof s === "string") return [{ raw: { prompt: s }, path, rowVars: {} }];
      const o = c.object(s, path);
      return o ? [{ raw: o, path, rowVars: {} }] : [];
    });
  return validate(root, raw, c, "yaml", options);
}
