import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import type { ElfProblem } from "./elf.js";
import { PackagingError } from "./errors.js";
import { run } from "./run.js";

/**
 * That the native addons were built for the bundled Node, not merely for its machine: an addon built
 * against other headers (another NODE_MODULE_VERSION) is the right ELF and still fails to load.
 */

/** NODE_MODULE_VERSION of a runtime, from its headers (include/node/node_version.h). */
export function runtimeModuleVersion(runtimeDir: string): number {
  const header = readFileSync(join(runtimeDir, "include", "node", "node_version.h"), "utf8");
  const match = /^#define NODE_MODULE_VERSION (\d+)$/m.exec(header);
  if (!match) throw new PackagingError(`no NODE_MODULE_VERSION in ${runtimeDir}/include/node/node_version.h`);
  return Number(match[1]);
}

function addonsUnder(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".node"))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/**
 * Static, for any target: an addon that exports node_register_module_v<N> (NODE_MODULE_INIT and
 * better-sqlite3's registration) was compiled for module version N. N-API addons (napi_register_module_v1)
 * load in any Node; legacy ones register at load time and are covered by loadAddons.
 */
export function findModuleVersionProblems(root: string, moduleVersion: number): ElfProblem[] {
  const problems: ElfProblem[] = [];
  for (const addon of addonsUnder(root)) {
    const symbols = run("readelf", ["--dyn-syms", "--wide", addon], {
      what: `reading the symbols of ${addon}`,
      capture: true,
      install: "binutils",
    });
    for (const [, version] of symbols.matchAll(/\bnode_register_module_v(\d+)\b/g))
      if (Number(version) !== moduleVersion)
        problems.push({
          file: relative(root, addon),
          is: `built for Node module version ${version}, not ${moduleVersion} (the bundled runtime's): built against another Node's headers`,
        });
  }
  return problems;
}

/** findModuleVersionProblems against the bundled runtime, as the build's refusal. */
export function checkModuleVersions(root: string, runtimeDir: string, arch: string): void {
  const problems = findModuleVersionProblems(root, runtimeModuleVersion(runtimeDir));
  if (problems.length > 0)
    throw new PackagingError(
      `refusing the ${arch} package:\n${problems.map((p) => `  ${p.file}: ${p.is}`).join("\n")}`,
    );
}

/**
 * Dynamic, where this machine can run the bundled node (the target's architecture, or an emulator
 * that runs it whole): loads every addon in it. Returns what was done, or why it was skipped.
 */
export function loadAddons(root: string): string {
  const node = join(root, "node", "bin", "node");
  if (spawnSync(node, ["--version"], { stdio: "ignore" }).status !== 0)
    return "skipped: the bundled node does not run on this machine (another architecture); the ELF and module-version checks stand";
  const addons = addonsUnder(root);
  const script =
    "for (const file of process.argv.slice(1)) { try { process.dlopen({ exports: {} }, file); } " +
    "catch (e) { console.error(file + ': ' + e.message.split('\\n').join(' ')); process.exitCode = 1; } }";
  const result = spawnSync(node, ["-e", script, ...addons], { encoding: "utf8" });
  if (result.status !== 0)
    throw new PackagingError(
      `refusing the package: native addons that the bundled node cannot load:\n${result.stderr.trim()}`,
    );
  return `${addons.length} addons loaded by the bundled node`;
}
