import { rename, writeFile } from "node:fs/promises";

/** Writes JSON atomically (temp file + rename), so a reader never sees half a file. */
export async function atomicWriteJson(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, path);
}
