import { PackagingError } from "./errors.js";
import { hasCommand } from "./run.js";
import type { Target, Toolchain } from "./target.js";

/**
 * Every tool the build will need, checked before it starts (a missing cross-compiler found after the
 * runtime download and the npm install wastes minutes): one message listing what to install.
 */
export function checkBuildTools(target: Target, toolchain: Toolchain): void {
  const needed: [command: string, debianPackage: string][] = [
    ["npm", "npm"],
    ["tar", "tar"],
    ["gzip", "gzip"],
    ["dpkg-deb", "dpkg"],
    ["make", "make"],
    // node-gyp runs gyp, which is Python.
    ["python3", "python3"],
    ["readelf", "binutils"],
    [toolchain.cc, toolchain.packages.find((p) => p.startsWith("gcc")) ?? "gcc"],
    [toolchain.cxx, toolchain.packages.find((p) => p.startsWith("g++")) ?? "g++"],
    [toolchain.strip, toolchain.cross ? `binutils-${target.triplet.replaceAll("_", "-")}` : "binutils"],
  ];
  const missing = needed.filter(([command]) => !hasCommand(command));
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map(([, p]) => p))];
  throw new PackagingError(
    `building the ${target.deb} package needs ${missing.map(([c]) => c).join(", ")}, not found on the PATH: ` +
      `apt-get install ${packages.join(" ")}` +
      (toolchain.cross
        ? ` (the cross-compilers for ${target.deb}: native addons are built for the target)`
        : ""),
  );
}
