import { existsSync, lstatSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { MIGRATIONS } from "../gateway/store/migrations.js";
import { checkModuleVersions, loadAddons } from "./addon-check.js";
import { DEBIAN_VERSION } from "./control.js";
import { layOutDebRoot, writeDeb } from "./deb.js";
import { checkElfFiles } from "./elf.js";
import { PackagingError } from "./errors.js";
import { writeManifest } from "./manifest.js";
import { checkBuildTools } from "./preflight.js";
import type { AddonBuild } from "./native-addons.js";
import type { PruneResult } from "./prune.js";
import { type ReleaseInfo, stageReleaseTree } from "./release-tree.js";
import { packageVersion } from "./repo.js";
import { normalizeTree, sourceCommit, sourceDateEpoch } from "./reproducible.js";
import { fetchRuntime } from "./runtime.js";
import { linkedLibraries, shlibDepends } from "./shlib-depends.js";
import { type DebArch, TARGETS, toolchainFor } from "./target.js";
import { writeTarball } from "./tarball.js";
import { lockWorkDir } from "./work-lock.js";

/** Debian wants a name and an address; the default says plainly that it is nobody's mailbox. */
const DEFAULT_MAINTAINER = "greenwave maintainers <maintainers@greenwave.invalid>";

export interface BuildResult {
  readonly info: ReleaseInfo;
  readonly deb: string;
  readonly tarball: string;
  readonly depends: readonly string[];
  readonly epoch: number;
  /** Bytes of the release tree and its main parts. */
  readonly sizes: Readonly<Record<"tree" | "node" | "nodeModules" | "dist" | "deb" | "tarball", number>>;
  readonly files: number;
  readonly addons: readonly AddonBuild[];
  readonly pruned: PruneResult;
  /** The load test of the addons in the bundled node: what was done, or why it was skipped. */
  readonly loaded: string;
  /** Seconds per step: runtime, stage (npm ci, addons, tsc), checks, tar.gz, deb. */
  readonly phases: Readonly<Record<string, number>>;
  readonly seconds: number;
}

/**
 * One package build: greenwave_<version>_<arch>.deb and .tar.gz of the same release tree, in `outDir`.
 * The work happens in <outDir>/.work-<arch>/, removed when the build succeeds (kept for a look when it
 * fails); one build per output directory and architecture at a time.
 */
export async function buildPackage(options: {
  repoRoot: string;
  arch: DebArch;
  outDir: string;
}): Promise<BuildResult> {
  const outDir = resolve(options.outDir);
  mkdirSync(outDir, { recursive: true });
  const workDir = join(outDir, `.work-${options.arch}`);
  const unlock = lockWorkDir(`${workDir}.lock`, `${options.arch} into ${outDir}`);
  try {
    return await build(options.repoRoot, options.arch, outDir, workDir);
  } finally {
    unlock();
  }
}

async function build(repoRoot: string, arch: DebArch, outDir: string, workDir: string): Promise<BuildResult> {
  const began = performance.now();
  const phases: Record<string, number> = {};
  let mark = began;
  const phase = (name: string) => {
    const now = performance.now();
    phases[name] = (now - mark) / 1000;
    mark = now;
  };
  const target = TARGETS[arch];
  const toolchain = toolchainFor(target);
  checkBuildTools(target, toolchain);

  const version = packageVersion(repoRoot);
  if (!DEBIAN_VERSION.test(version))
    throw new PackagingError(
      `package.json's version "${version}" is not a Debian version (digits first; letters, digits, . + ~)`,
    );
  const epoch = sourceDateEpoch(repoRoot);
  const runtime = await fetchRuntime(target);
  phase("runtime");
  const info: ReleaseInfo = {
    version,
    arch,
    node: runtime.version,
    schemaVersion: MIGRATIONS.length,
    commit: sourceCommit(repoRoot),
  };

  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  const tree = join(workDir, `greenwave-${version}`);
  process.stderr.write(`staging greenwave ${version} for ${arch} in ${tree}\n`);
  const staged = stageReleaseTree({ repoRoot, workDir, tree, runtime, target, toolchain, info });
  phase("stage");

  checkElfFiles(tree, target);
  checkModuleVersions(tree, runtime.dir, arch);
  const loaded = loadAddons(tree);
  const depends = shlibDepends(linkedLibraries(tree));
  normalizeTree(tree, epoch);
  writeManifest(tree);
  normalizeTree(tree, epoch);
  const sizes = {
    tree: bytesUnder(tree),
    node: bytesUnder(join(tree, "node")),
    nodeModules: bytesUnder(join(tree, "app", "node_modules")),
    dist: bytesUnder(join(tree, "app", "dist")),
  };
  const files = countFiles(tree);
  phase("checks");

  const base = join(outDir, `greenwave_${version}_${arch}`);
  process.stderr.write(`writing ${base}.tar.gz and ${base}.deb\n`);
  writeTarball(tree, epoch, `${base}.tar.gz`);
  phase("tar.gz");
  const debRoot = join(workDir, "deb");
  layOutDebRoot({ repoRoot, debRoot, tree, version });
  writeDeb({
    debRoot,
    control: {
      version,
      arch,
      maintainer: process.env.GREENWAVE_MAINTAINER || DEFAULT_MAINTAINER,
      libraryDepends: depends,
      nodeVersion: runtime.version,
    },
    epoch,
    out: `${base}.deb`,
  });
  phase("deb");
  rmSync(workDir, { recursive: true, force: true });
  return {
    info,
    deb: `${base}.deb`,
    tarball: `${base}.tar.gz`,
    depends,
    epoch,
    sizes: { ...sizes, deb: statSync(`${base}.deb`).size, tarball: statSync(`${base}.tar.gz`).size },
    files,
    addons: staged.addons,
    pruned: staged.pruned,
    loaded,
    phases,
    seconds: (performance.now() - began) / 1000,
  };
}

function bytesUnder(path: string): number {
  if (!existsSync(path)) return 0;
  const stat = lstatSync(path);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((sum, entry) => sum + bytesUnder(join(path, entry)), 0);
}

function countFiles(path: string): number {
  return readdirSync(path, { withFileTypes: true }).reduce(
    (n, e) => n + (e.isDirectory() ? countFiles(join(path, e.name)) : 1),
    0,
  );
}
