import { closeSync, existsSync, openSync, readdirSync, readSync } from "node:fs";
import { join, relative } from "node:path";
import { PackagingError } from "./errors.js";
import type { Target } from "./target.js";

/**
 * What a binary is, from its first bytes: the ELF header's class, byte order, type and e_machine
 * (System V ABI), or which other format it is. Read here rather than with `file`: 20 bytes, no tool.
 */
export type BinaryKind =
  | {
      readonly format: "elf";
      readonly bits: 32 | 64;
      readonly endian: "LSB" | "MSB";
      readonly type: string;
      readonly machine: number;
    }
  | { readonly format: "other"; readonly what: string };

const MACHINES: Readonly<Record<number, string>> = {
  3: "Intel 80386",
  8: "MIPS",
  20: "PowerPC",
  21: "64-bit PowerPC",
  40: "ARM (32-bit)",
  62: "x86-64",
  183: "AArch64",
  243: "RISC-V",
};
const TYPES: Readonly<Record<number, string>> = {
  1: "relocatable object",
  2: "executable",
  3: "shared object",
  4: "core dump",
};

export function machineName(machine: number): string {
  return MACHINES[machine] ?? `machine ${machine}`;
}

/** Reads the header of a file. Never throws for content: an empty or foreign file is described. */
export function readBinaryKind(path: string): BinaryKind {
  const header = Buffer.alloc(20);
  const fd = openSync(path, "r");
  let length: number;
  try {
    length = readSync(fd, header, 0, header.length, 0);
  } finally {
    closeSync(fd);
  }
  if (length >= 4 && header.readUInt32BE(0) === 0x7f454c46) {
    if (length < 20) return { format: "other", what: "a truncated ELF file" };
    const bits = header[4] === 1 ? 32 : header[4] === 2 ? 64 : null;
    const endian = header[5] === 1 ? "LSB" : header[5] === 2 ? "MSB" : null;
    if (bits === null || endian === null)
      return { format: "other", what: "an ELF file with an invalid header" };
    const read16 = (offset: number) =>
      endian === "LSB" ? header.readUInt16LE(offset) : header.readUInt16BE(offset);
    const type = read16(16);
    return { format: "elf", bits, endian, type: TYPES[type] ?? `type ${type}`, machine: read16(18) };
  }
  if (length === 0) return { format: "other", what: "an empty file" };
  if (length >= 2 && header.toString("latin1", 0, 2) === "MZ")
    return { format: "other", what: "a Windows PE file (DLL/EXE)" };
  if (length >= 4) {
    const magic = header.readUInt32BE(0);
    if ([0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe].includes(magic))
      return { format: "other", what: "a macOS Mach-O file" };
    if (magic === 0xcafebabe) return { format: "other", what: "a macOS universal (fat) Mach-O file" };
  }
  if (length >= 2 && header.toString("latin1", 0, 2) === "#!") return { format: "other", what: "a script" };
  const text = header
    .subarray(0, length)
    .every((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127));
  return { format: "other", what: text ? "a text file" : "not an ELF file" };
}

/** "ELF 64-bit LSB shared object, x86-64 (e_machine 62)". */
export function describe(kind: BinaryKind): string {
  if (kind.format === "other") return kind.what;
  return `ELF ${kind.bits}-bit ${kind.endian} ${kind.type}, ${machineName(kind.machine)} (e_machine ${kind.machine})`;
}

export interface ElfProblem {
  readonly file: string;
  readonly is: string;
}

/**
 * The check that refuses a package built for the wrong machine: the bundled node binary and every
 * native addon (.node) must be 64-bit ELF of the target's machine, and so must any other ELF file in
 * the tree (an executable shipped inside some npm package). Returns the problems, paths relative to root.
 */
export function findElfProblems(
  root: string,
  target: Target,
  mustBeElf: readonly string[] = ["node/bin/node"],
): ElfProblem[] {
  const problems: ElfProblem[] = [];
  const wanted = `ELF 64-bit LSB, ${machineName(target.elfMachine)} (e_machine ${target.elfMachine})`;
  const check = (path: string, required: boolean) => {
    const kind = readBinaryKind(path);
    const file = relative(root, path);
    if (kind.format === "other") {
      if (required) problems.push({ file, is: `${kind.what}, not ${wanted}` });
      return;
    }
    if (kind.machine !== target.elfMachine || kind.bits !== 64 || kind.endian !== "LSB")
      problems.push({ file, is: `${describe(kind)}, not ${wanted}` });
  };
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile())
        check(path, entry.name.endsWith(".node") || mustBeElf.includes(relative(root, path)));
    }
  };
  walk(root);
  for (const file of mustBeElf)
    if (!existsSync(join(root, file))) problems.push({ file, is: `missing, not ${wanted}` });
  return problems;
}

/** findElfProblems, as the build's refusal. */
export function checkElfFiles(root: string, target: Target): void {
  const problems = findElfProblems(root, target);
  if (problems.length === 0) return;
  throw new PackagingError(
    `refusing the ${target.deb} package: ${problems.length} binar${problems.length === 1 ? "y is" : "ies are"} not for ${target.deb}:\n` +
      problems.map((p) => `  ${p.file}: ${p.is}`).join("\n"),
  );
}
