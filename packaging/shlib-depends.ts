import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { readBinaryKind } from "./elf.js";
import { PackagingError } from "./errors.js";
import { run } from "./run.js";

/**
 * The package's Depends, computed from what its ELF files really link against (what dpkg-shlibdeps
 * does for Debian's own packages, which it cannot do here for a cross-built tree): the shared libraries
 * each binary NEEDs, mapped to their Debian packages, with the newest symbol version used from each
 * as the lower bound. A library outside this table is refused: the device might not have it.
 */
const LIBRARIES: Readonly<Record<string, string>> = {
  "libc.so.6": "libc6",
  "libm.so.6": "libc6",
  "libdl.so.2": "libc6",
  "libpthread.so.0": "libc6",
  "librt.so.1": "libc6",
  "ld-linux-x86-64.so.2": "libc6",
  "ld-linux-aarch64.so.1": "libc6",
  "libstdc++.so.6": "libstdc++6",
  "libgcc_s.so.1": "libgcc-s1",
};

/**
 * libstdc++'s GLIBCXX_3.4.N first shipped with these GCC releases (libstdc++.so.6.0.N; the libstdc++
 * manual's ABI policy): Debian's libstdc++6 carries the GCC version.
 */
const GLIBCXX_GCC: Readonly<Record<number, string>> = {
  19: "4.9",
  20: "4.9",
  21: "5",
  22: "6",
  23: "7",
  24: "8",
  25: "8",
  26: "9",
  27: "9.2",
  28: "9.3",
  29: "11",
  30: "12",
  31: "13",
  32: "13.2",
  33: "14",
};

export interface LinkedLibraries {
  /** Every NEEDED library, with the binaries that need it (relative paths). */
  readonly needed: ReadonlyMap<string, readonly string[]>;
  /** Newest GLIBC_x.y and GLIBCXX_3.4.N used, as numbers lists ([2, 34], [3, 4, 29]), or null. */
  readonly glibc: readonly number[] | null;
  readonly glibcxx: readonly number[] | null;
}

/** Reads NEEDED entries and version needs of every ELF file under root (readelf, binutils). */
export function linkedLibraries(root: string): LinkedLibraries {
  const needed = new Map<string, string[]>();
  let glibc: number[] | null = null;
  let glibcxx: number[] | null = null;
  const newer = (a: number[] | null, b: number[]) => (a === null || compareVersions(b, a) > 0 ? b : a);
  const visit = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.isFile() && readBinaryKind(path).format === "elf") {
        const text = run("readelf", ["--dynamic", "--version-info", "--wide", path], {
          what: `reading the dynamic section of ${path}`,
          capture: true,
          install: "binutils",
        });
        for (const [, library] of text.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g))
          needed.set(library as string, [...(needed.get(library as string) ?? []), relative(root, path)]);
        for (const [, version] of text.matchAll(/Name: GLIBC_([0-9.]+)/g))
          glibc = newer(glibc, parse(version as string));
        for (const [, version] of text.matchAll(/Name: GLIBCXX_([0-9.]+)/g))
          glibcxx = newer(glibcxx, parse(version as string));
      }
    }
  };
  visit(root);
  return { needed, glibc, glibcxx };
}

/** Depends: for the libraries; refuses one not in the table. */
export function shlibDepends(linked: LinkedLibraries): string[] {
  const unknown = [...linked.needed].filter(([library]) => !(library in LIBRARIES));
  if (unknown.length > 0)
    throw new PackagingError(
      `the release links against libraries the package build does not know: ${unknown
        .map(([library, by]) => `${library} (by ${by.join(", ")})`)
        .join(
          "; ",
        )}. A gateway may not have them: add the library and its Debian package to packaging/shlib-depends.ts, or drop it`,
    );
  const packages = new Set([...linked.needed.keys()].map((library) => LIBRARIES[library] as string));
  const depends: string[] = [];
  for (const pkg of [...packages].sort()) {
    if (pkg === "libc6" && linked.glibc) depends.push(`libc6 (>= ${linked.glibc.join(".")})`);
    else if (pkg === "libstdc++6" && linked.glibcxx) {
      const minor = linked.glibcxx[2] ?? 0;
      const gcc = GLIBCXX_GCC[minor];
      if (gcc === undefined)
        throw new PackagingError(
          `GLIBCXX_${linked.glibcxx.join(".")} is not in packaging/shlib-depends.ts's table: add the GCC release that introduced it`,
        );
      depends.push(`libstdc++6 (>= ${gcc})`);
    } else depends.push(pkg);
  }
  return depends;
}

function parse(version: string): number[] {
  return version.split(".").map(Number);
}

function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
