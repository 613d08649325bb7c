import { availableParallelism } from "node:os";
import { existsSync, readdirSync, realpathSync, rmSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { PackagingError } from "./errors.js";
import { run } from "./run.js";
import type { Runtime } from "./runtime.js";
import type { Target, Toolchain } from "./target.js";

/**
 * The production dependencies' native parts, each handled one known way, so that a new dependency
 * with C++ in it stops the build instead of shipping without its binary:
 * - built here with node-gyp for the target, against the bundled runtime's headers (--nodedir), by
 *   the target's compilers (cross-compilers for another architecture); only the .node file stays;
 * - N-API prebuilds shipped inside the npm package (serialport's bindings): only the target's stays.
 */
const BUILT: Readonly<Record<string, { readonly binary: string; readonly sources: readonly string[] }>> = {
  // deps/: the SQLite amalgamation (10 MB of C), compiled into the addon; src/: the C++ binding.
  "better-sqlite3": { binary: "better_sqlite3.node", sources: ["deps", "src", "binding.gyp"] },
  "unix-dgram": { binary: "unix_dgram.node", sources: ["src", "binding.gyp"] },
};
const PREBUILT: ReadonlySet<string> = new Set(["@serialport/bindings-cpp"]);

/** Package directories (relative to node_modules' parent) holding a binding.gyp, nested ones too. */
export function nativePackages(appDir: string): { name: string; dir: string }[] {
  const found: { name: string; dir: string }[] = [];
  const visit = (modules: string) => {
    if (!existsSync(modules)) return;
    for (const entry of readdirSync(modules, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith(".")) continue;
      const packages = entry.name.startsWith("@")
        ? readdirSync(join(modules, entry.name), { withFileTypes: true })
            .filter((e) => e.isDirectory())
            .map((e) => `${entry.name}/${e.name}`)
        : [entry.name];
      for (const name of packages) {
        const dir = join(modules, name);
        if (existsSync(join(dir, "binding.gyp"))) found.push({ name, dir });
        visit(join(dir, "node_modules"));
      }
    }
  };
  visit(join(appDir, "node_modules"));
  return found.sort((a, b) => a.dir.localeCompare(b.dir));
}

/**
 * npm's own node-gyp: the one `npm run` names in npm_config_node_gyp, or the one beside the npm on the
 * PATH. No download: with --nodedir it takes the headers from the bundled runtime.
 */
export function findNodeGyp(): string {
  const candidates = [process.env.npm_config_node_gyp];
  try {
    const npmCli = realpathSync(
      run("sh", ["-c", "command -v npm"], { what: "finding npm", capture: true }).trim(),
    );
    candidates.push(join(dirname(dirname(npmCli)), "node_modules", "node-gyp", "bin", "node-gyp.js"));
  } catch {
    // No npm on the PATH: only the environment's candidate is left.
  }
  const found = candidates.find((c): c is string => !!c && existsSync(c));
  if (!found)
    throw new PackagingError(
      "cannot find node-gyp: run the build through `npm run package` (npm names its node-gyp), or install npm (apt-get install npm)",
    );
  return found;
}

export interface AddonBuild {
  readonly name: string;
  /** The built (and stripped) addon, relative to the app directory. */
  readonly binary: string;
  readonly seconds: number;
}

/** Builds every native package of the app for the target, then keeps only what loads at run time. */
export function buildNativeAddons(
  appDir: string,
  runtime: Runtime,
  target: Target,
  toolchain: Toolchain,
  workDir: string,
): AddonBuild[] {
  const packages = nativePackages(appDir);
  const unknown = packages.filter((p) => !(p.name in BUILT) && !PREBUILT.has(p.name));
  if (unknown.length > 0)
    throw new PackagingError(
      `production dependencies with native code the package build does not know: ${unknown.map((p) => p.name).join(", ")}. ` +
        "Add each to BUILT (built with node-gyp for the target) or PREBUILT (N-API prebuilds) in packaging/native-addons.ts",
    );
  const nodeGyp = findNodeGyp();
  const builds: AddonBuild[] = [];
  for (const pkg of packages) {
    if (PREBUILT.has(pkg.name)) {
      keepTargetPrebuilds(pkg.dir, pkg.name, target);
      continue;
    }
    const spec = BUILT[pkg.name] as (typeof BUILT)[string];
    const began = performance.now();
    process.stderr.write(`building ${pkg.name} for ${target.deb} (node-gyp, ${toolchain.cxx})\n`);
    run(
      process.execPath,
      [
        nodeGyp,
        "rebuild",
        "--release",
        `--nodedir=${runtime.dir}`,
        `--arch=${target.nodeArch}`,
        `--jobs=${availableParallelism()}`,
      ],
      {
        what: `building ${pkg.name} for ${target.deb}`,
        cwd: pkg.dir,
        env: buildEnv(toolchain, workDir, runtime),
        capture: true,
      },
    );
    const binary = join(pkg.dir, "build", "Release", spec.binary);
    if (!existsSync(binary))
      throw new PackagingError(
        `node-gyp built ${pkg.name} but ${binary} is missing: see its build/ directory`,
      );
    // Symbols are of no use on a gateway; stripping also drops anything of this machine they name.
    run(toolchain.strip, ["--strip-unneeded", binary], {
      what: `stripping ${binary}`,
      install: toolchain.packages.join(" "),
    });
    // Only the addon stays: build/Release/obj.target, .deps, Makefiles, test_extension.node and the sources go.
    for (const entry of readdirSync(join(pkg.dir, "build")))
      if (entry !== "Release") rmSync(join(pkg.dir, "build", entry), { recursive: true });
    for (const entry of readdirSync(join(pkg.dir, "build", "Release")))
      if (entry !== spec.binary) rmSync(join(pkg.dir, "build", "Release", entry), { recursive: true });
    for (const source of spec.sources) rmSync(join(pkg.dir, source), { recursive: true, force: true });
    builds.push({
      name: pkg.name,
      binary: relative(appDir, binary),
      seconds: (performance.now() - began) / 1000,
    });
  }
  return builds;
}

/**
 * The compilers of the target, and file paths of this machine mapped away in what they emit
 * (__FILE__ in assertions, debug info if any): two builds in different directories give the same bytes.
 */
function buildEnv(toolchain: Toolchain, workDir: string, runtime: Runtime): NodeJS.ProcessEnv {
  const prefixMap = `-ffile-prefix-map=${workDir}=/build -ffile-prefix-map=${runtime.dir}=/node`;
  // Nothing of npm's configuration: `npm run` exports it as npm_config_*, and node-gyp takes those
  // as its own options. Debian's npm sets nodedir=/usr, which would build against this machine's Node
  // headers (another ABI) instead of the bundled runtime's.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
  return {
    ...inherited,
    CC: toolchain.cc,
    CXX: toolchain.cxx,
    // gyp's Makefiles link with $(LINK) and archive with $(AR): the target's, not this machine's.
    LINK: toolchain.cxx,
    ...(toolchain.cross ? { AR: toolchain.cc.replace(/gcc$/, "ar") } : {}),
    CFLAGS: prefixMap,
    CXXFLAGS: prefixMap,
  };
}

/**
 * serialport's bindings carry N-API prebuilds for every platform (node-gyp-build picks one at run
 * time): only prebuilds/linux-<arch>'s glibc build can load under the bundled glibc Node; the others go.
 */
function keepTargetPrebuilds(dir: string, name: string, target: Target): void {
  const prebuilds = join(dir, "prebuilds");
  const keep = `linux-${target.nodeArch}`;
  if (!existsSync(join(prebuilds, keep)))
    throw new PackagingError(
      `${name} has no prebuilds/${keep}: this version cannot run on ${target.deb} without a build`,
    );
  for (const platform of readdirSync(prebuilds))
    if (platform !== keep) rmSync(join(prebuilds, platform), { recursive: true });
  for (const file of readdirSync(join(prebuilds, keep)))
    if (!file.includes(".glibc.")) rmSync(join(prebuilds, keep, file), { recursive: true });
  if (readdirSync(join(prebuilds, keep)).length === 0)
    throw new PackagingError(`${name} has no glibc prebuild in prebuilds/${keep}`);
  // Its C++ sources are for a build from source, which never happens on a gateway.
  for (const source of ["src", "binding.gyp"]) rmSync(join(dir, source), { recursive: true, force: true });
}
