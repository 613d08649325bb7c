import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PackagingError } from "./errors.js";

/** The greenwave checkout this build runs from (dist/packaging/ when compiled, packaging/ in the tests). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (
      existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, "utf8")) as { name?: string }).name === "greenwave"
    )
      return dir;
    const parent = dirname(dir);
    if (parent === dir)
      throw new PackagingError(`no greenwave checkout above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export function packageVersion(root: string): string {
  return (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;
}
