import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

/** The compiled command, run as a user runs it. */
export const CLI = "dist/gateway/cli/main.js";

/** Builds once when dist/ is missing (npm test builds first; a lone `vitest run` may not have). */
export function buildOnce(): void {
  if (existsSync(CLI)) return;
  const build = spawnSync("npx", ["tsc", "-p", "tsconfig.build.json"], {
    encoding: "utf8",
    timeout: 120_000,
  });
  if (build.status !== 0) throw new Error(`build failed: ${build.stdout}${build.stderr}`);
}
