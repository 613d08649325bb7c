import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { run } from "./run.js";

/**
 * The release's node_modules: the production dependencies only, exactly the versions of
 * package-lock.json (npm ci), without running any install script (the native addons are built next,
 * for the target, not for this machine), without .bin links (nothing in a release runs them), and
 * from npm's cache when it has them (--prefer-offline).
 */
export function installProductionDeps(repoRoot: string, appDir: string): void {
  mkdirSync(appDir, { recursive: true });
  for (const file of ["package.json", "package-lock.json"])
    copyFileSync(join(repoRoot, file), join(appDir, file));
  run(
    "npm",
    [
      "ci",
      "--omit=dev",
      "--ignore-scripts",
      "--no-bin-links",
      "--prefer-offline",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
    ],
    { what: "npm ci of the production dependencies", cwd: appDir, capture: true, install: "npm" },
  );
}
