import { copyFileSync, cpSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { compileAppDist, copyExampleConfig } from "./app-dist.js";
import { type AddonBuild, buildNativeAddons } from "./native-addons.js";
import { installProductionDeps } from "./production-deps.js";
import { pruneNodeModules, type PruneResult } from "./prune.js";
import type { Runtime } from "./runtime.js";
import { renderScript } from "./scripts.js";
import type { DebArch, Target, Toolchain } from "./target.js";

/** release.json (the field contract): what a release is, read by `greenwave release` and by people. */
export interface ReleaseInfo {
  readonly version: string;
  readonly arch: DebArch;
  readonly node: string;
  /** The store schema this release migrates to: gateway/store/migrations.ts's MIGRATIONS.length. */
  readonly schemaVersion: number;
  readonly commit: string;
}

/** The system files every release carries in system/, by their name in packaging/system/. */
export const SYSTEM_FILES = [
  "greenwave.service",
  "sysusers.conf",
  "tmpfiles.conf",
  "99-greenwave-serial.rules",
  "intersection.yaml",
  "gateway.env",
] as const;

export interface StagedRelease {
  readonly addons: readonly AddonBuild[];
  readonly pruned: PruneResult;
}

/**
 * Writes a release tree (greenwave-<version>/ of the contract) into `tree`:
 *   bin/greenwave   the launcher (packaging/scripts/launcher.sh)
 *   node/           bin/node and LICENSE of the bundled runtime (no headers, npm or corepack)
 *   app/            package.json, package-lock.json, dist/, node_modules/ (production, built for the
 *                   target), config/ (examples)
 *   system/         the unit, sysusers.d and tmpfiles.d files, the udev example, example config and env
 *   install.sh      for systems without dpkg
 *   release.json
 * (MANIFEST is written last, by the caller, once the tree is final.)
 */
export function stageReleaseTree(options: {
  readonly repoRoot: string;
  readonly workDir: string;
  readonly tree: string;
  readonly runtime: Runtime;
  readonly target: Target;
  readonly toolchain: Toolchain;
  readonly info: ReleaseInfo;
}): StagedRelease {
  const { repoRoot, workDir, tree, runtime, target, toolchain, info } = options;
  mkdirSync(join(tree, "bin"), { recursive: true });
  writeFileSync(join(tree, "bin", "greenwave"), renderScript(repoRoot, "launcher.sh", info.version), {
    mode: 0o755,
  });

  mkdirSync(join(tree, "node", "bin"), { recursive: true });
  copyFileSync(join(runtime.dir, "bin", "node"), join(tree, "node", "bin", "node"));
  copyFileSync(join(runtime.dir, "LICENSE"), join(tree, "node", "LICENSE"));

  const app = join(tree, "app");
  installProductionDeps(repoRoot, app);
  const addons = buildNativeAddons(app, runtime, target, toolchain, workDir);
  const pruned = pruneNodeModules(join(app, "node_modules"));
  compileAppDist(repoRoot, workDir, app);
  copyExampleConfig(repoRoot, app);

  mkdirSync(join(tree, "system"), { recursive: true });
  for (const file of SYSTEM_FILES)
    cpSync(join(repoRoot, "packaging", "system", file), join(tree, "system", file));
  writeFileSync(join(tree, "install.sh"), renderScript(repoRoot, "install.sh", info.version), {
    mode: 0o755,
  });
  writeFileSync(join(tree, "release.json"), `${JSON.stringify(info, null, 2)}\n`);
  return { addons, pruned };
}
