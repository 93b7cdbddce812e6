// Rewrites the README's generated tables from the code that decides them (run after `pnpm build`).
import { readFileSync, writeFileSync } from "node:fs";
import { errorCodeMarkdown } from "../apps/cli/dist/exit-codes.js";

const file = new URL("../README.md", import.meta.url);
const readme = readFileSync(file, "utf8");
const next = readme.replace(
  /(<!-- error-codes -->\n)[\s\S]*?(<!-- \/error-codes -->)/,
  `$1${errorCodeMarkdown()}\n$2`,
);
writeFileSync(file, next);
console.log(next === readme ? "README.md: tables up to date" : "README.md: tables rewritten");
