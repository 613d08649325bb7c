/**
 * The architectures a gateway package is built for, in each naming system the build meets: Debian's
 * (the package), npm's and Node's (the runtime package, the serialport prebuilds, node-gyp), the ELF
 * header's e_machine (the check) and GNU's (the cross-compilers).
 */

export type DebArch = "amd64" | "arm64";

export interface Target {
  readonly deb: DebArch;
  /** npm's `cpu` and node-gyp's --arch; also the suffix of node-linux-<cpu> and prebuilds/linux-<cpu>. */
  readonly nodeArch: "x64" | "arm64";
  /** e_machine of the target's ELF files (EM_X86_64, EM_AARCH64). */
  readonly elfMachine: number;
  /** GNU triplet: the prefix of the cross toolchain's commands. */
  readonly triplet: string;
  /** Debian's names of the cross-compilers for this target (on a host of another architecture). */
  readonly crossPackages: readonly string[];
}

export const TARGETS: Readonly<Record<DebArch, Target>> = {
  amd64: {
    deb: "amd64",
    nodeArch: "x64",
    elfMachine: 62,
    triplet: "x86_64-linux-gnu",
    crossPackages: ["gcc-x86-64-linux-gnu", "g++-x86-64-linux-gnu"],
  },
  arm64: {
    deb: "arm64",
    nodeArch: "arm64",
    elfMachine: 183,
    triplet: "aarch64-linux-gnu",
    crossPackages: ["gcc-aarch64-linux-gnu", "g++-aarch64-linux-gnu"],
  },
};

export function isDebArch(value: string): value is DebArch {
  return value === "amd64" || value === "arm64";
}

/** The Debian architecture of the machine this runs on, or null for one no gateway package is built on. */
export function hostDebArch(): DebArch | null {
  if (process.arch === "x64") return "amd64";
  if (process.arch === "arm64") return "arm64";
  return null;
}

/** The compilers and binutils that build native addons for a target on this machine. */
export interface Toolchain {
  readonly cross: boolean;
  readonly cc: string;
  readonly cxx: string;
  readonly strip: string;
  /** Debian packages that provide them, for the message when one is missing. */
  readonly packages: readonly string[];
}

export function toolchainFor(target: Target): Toolchain {
  if (hostDebArch() === target.deb)
    return { cross: false, cc: "gcc", cxx: "g++", strip: "strip", packages: ["gcc", "g++", "binutils"] };
  return {
    cross: true,
    cc: `${target.triplet}-gcc`,
    cxx: `${target.triplet}-g++`,
    strip: `${target.triplet}-strip`,
    packages: target.crossPackages,
  };
}
