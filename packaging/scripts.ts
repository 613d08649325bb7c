import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PackagingError } from "./errors.js";

/**
 * The shell scripts of a release and its package, from packaging/scripts/: @VERSION@ becomes the
 * version, and a line `@COMMON@` the shared functions of common.sh (the Debian postinst and the
 * tarball's install.sh do the same steps, so they share one text).
 */
export type ScriptName = "launcher.sh" | "install.sh" | "preinst" | "postinst" | "prerm" | "postrm";

export function renderScript(repoRoot: string, name: ScriptName, version: string): string {
  const dir = join(repoRoot, "packaging", "scripts");
  const common = readFileSync(join(dir, "common.sh"), "utf8").trimEnd();
  const text = readFileSync(join(dir, name), "utf8")
    .replace(/^@COMMON@$/m, () => common)
    .replaceAll("@VERSION@", version);
  const left = /@[A-Z]+@/.exec(text);
  if (left)
    throw new PackagingError(`packaging/scripts/${name} has a placeholder ${left[0]} nothing fills in`);
  return text;
}
