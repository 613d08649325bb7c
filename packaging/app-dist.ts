import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { PackagingError } from "./errors.js";
import { run } from "./run.js";

/** The compiled folders a gateway runs: the command line imports the gateway, the devices and the simulators. */
const RUNTIME_FOLDERS = ["gateway", "devices", "simulators"];

/**
 * app/dist: compiled afresh from the sources (never the working copy's dist/, which may hold files of
 * deleted sources), without source maps (no TypeScript sources ship to map to), and only the folders
 * the command runs (not bench/ nor this build).
 */
export function compileAppDist(repoRoot: string, workDir: string, appDir: string): void {
  const out = join(workDir, "tsc");
  rmSync(out, { recursive: true, force: true });
  const tsc = join(repoRoot, "node_modules", "typescript", "bin", "tsc");
  if (!existsSync(tsc)) throw new PackagingError(`${tsc} is missing: run npm ci in ${repoRoot} first`);
  run(
    process.execPath,
    [tsc, "-p", join(repoRoot, "tsconfig.build.json"), "--outDir", out, "--sourceMap", "false"],
    {
      what: "compiling the TypeScript (tsc -p tsconfig.build.json)",
      cwd: repoRoot,
      capture: true,
    },
  );
  mkdirSync(join(appDir, "dist"), { recursive: true });
  for (const folder of RUNTIME_FOLDERS)
    cpSync(join(out, folder), join(appDir, "dist", folder), { recursive: true });
  rmSync(out, { recursive: true, force: true });
}

/** app/config: the example corridor, intersections, plans, device profiles and editor schemas (not broken/: test inputs). */
export function copyExampleConfig(repoRoot: string, appDir: string): void {
  const from = join(repoRoot, "config");
  cpSync(from, join(appDir, "config"), {
    recursive: true,
    filter: (source) => source !== join(from, "broken"),
  });
}
