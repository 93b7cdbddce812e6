const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/;

/** Tells whether an id can be used as a file-name stem inside the run folder. */
export function isSafeId(id: string): boolean {
  return SAFE_ID.test(id) && !id.includes("..");
}

/** Turns a prompt into an id stem: its first words, lower-case, dashes. */
export function slugify(text: string, maxLength = 40): string {
  const slug = text
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/\{\{[^}]*\}\}|\[[^\]]*\]/g, " ")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .split("-")
    .slice(0, 6)
    .join("-")
    .slice(0, maxLength)
    .replace(/-+$/, "");
  return slug || "scene";
}
