import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  checkElfFiles,
  describe as describeKind,
  findElfProblems,
  readBinaryKind,
} from "../../packaging/elf.js";
import { findModuleVersionProblems } from "../../packaging/addon-check.js";
import { PackagingError } from "../../packaging/errors.js";
import { type DebArch, hostDebArch, TARGETS, toolchainFor } from "../../packaging/target.js";
import { hasTool } from "../support/tools.js";

/**
 * The check that refuses a package whose binaries are not of its target, on real files: this
 * machine's node, objects compiled here by gcc and by the other architecture's cross-compiler, text.
 */
const host = hostDebArch() as DebArch;
const foreign: DebArch = host === "amd64" ? "arm64" : "amd64";
const dir = mkdtempSync(join(tmpdir(), "greenwave-elf-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NAMES: Record<DebArch, string> = { amd64: "x86-64", arm64: "AArch64" };

/** A shared object (an addon's shape) compiled by `cc`. */
function compileShared(cc: string, out: string, code = "int greenwave_answer(void) { return 42; }"): string {
  const source = join(dir, "addon.c");
  writeFileSync(source, `${code}\n`);
  const r = spawnSync(cc, ["-shared", "-fPIC", "-o", out, source], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cc} failed: ${r.stderr}`);
  return out;
}

function place(tree: string, path: string, from: string): void {
  mkdirSync(dirname(join(tree, path)), { recursive: true });
  copyFileSync(from, join(tree, path));
}

describe("reading ELF headers", () => {
  it("reads this machine's node as a 64-bit little-endian ELF of this machine", () => {
    const kind = readBinaryKind(realpathSync(process.execPath));
    expect(kind).toMatchObject({ format: "elf", bits: 64, endian: "LSB", machine: TARGETS[host].elfMachine });
    expect(describeKind(kind)).toMatch(
      new RegExp(
        `^ELF 64-bit LSB (executable|shared object), ${NAMES[host]} \\(e_machine ${TARGETS[host].elfMachine}\\)$`,
      ),
    );
  });

  it(`reads an object of the ${foreign} cross-compiler as ${NAMES[foreign]}`, () => {
    const { cc } = toolchainFor(TARGETS[foreign]);
    if (!hasTool(cc, `the ${foreign} ELF header test`, TARGETS[foreign].crossPackages[0] as string)) return;
    const kind = readBinaryKind(compileShared(cc, join(dir, `foreign.so`)));
    expect(kind).toEqual({
      format: "elf",
      bits: 64,
      endian: "LSB",
      type: "shared object",
      machine: TARGETS[foreign].elfMachine,
    });
  });

  it("says what a file is when it is not ELF", () => {
    const file = (name: string, content: string | Buffer) => {
      writeFileSync(join(dir, name), content);
      return join(dir, name);
    };
    expect(describeKind(readBinaryKind(file("text.node", "module.exports = 42;\n")))).toBe("a text file");
    expect(describeKind(readBinaryKind(file("empty.node", "")))).toBe("an empty file");
    expect(describeKind(readBinaryKind(file("script", "#!/bin/sh\nexit 0\n")))).toBe("a script");
    const elf = readFileSync(realpathSync(process.execPath)).subarray(0, 12);
    expect(describeKind(readBinaryKind(file("truncated.node", elf)))).toBe("a truncated ELF file");
    expect(
      describeKind(readBinaryKind(file("mz.node", Buffer.from("MZ\x90\x00\x03\x00\x00\x00", "latin1")))),
    ).toBe("a Windows PE file (DLL/EXE)");
    expect(
      describeKind(readBinaryKind(file("macho.node", Buffer.from([0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1])))),
    ).toBe("a macOS Mach-O file");
  });
});

describe("the package's ELF check", () => {
  it(`refuses a tree for ${host} holding a ${foreign} addon, a text addon and no node, naming each`, () => {
    if (!hasTool("gcc", "the ELF check of a tree")) return;
    const tree = join(dir, "tree");
    const good = compileShared("gcc", join(dir, "good.so"));
    place(tree, "app/node_modules/good/build/Release/good.node", good);
    place(tree, "bin/greenwave", join(dir, "script"));
    writeFileSync(join(dir, "fake.node"), "module.exports = 42;\n");
    place(tree, "app/node_modules/fake/fake.node", join(dir, "fake.node"));
    const wanted = `not ELF 64-bit LSB, ${NAMES[host]} (e_machine ${TARGETS[host].elfMachine})`;
    const expected = [
      { file: "app/node_modules/fake/fake.node", is: `a text file, ${wanted}` },
      { file: "node/bin/node", is: `missing, ${wanted}` },
    ];
    const { cc } = toolchainFor(TARGETS[foreign]);
    if (hasTool(cc, `the ${foreign} addon in the ELF check`, TARGETS[foreign].crossPackages[0] as string)) {
      place(tree, "app/node_modules/other/other.node", compileShared(cc, join(dir, "other.so")));
      expected.unshift({
        file: "app/node_modules/other/other.node",
        is: `ELF 64-bit LSB shared object, ${NAMES[foreign]} (e_machine ${TARGETS[foreign].elfMachine}), ${wanted}`,
      });
    }
    expect(findElfProblems(tree, TARGETS[host]).sort((a, b) => a.file.localeCompare(b.file))).toEqual(
      expected.sort((a, b) => a.file.localeCompare(b.file)),
    );
    expect(() => checkElfFiles(tree, TARGETS[host])).toThrow(PackagingError);
    expect(() => checkElfFiles(tree, TARGETS[host])).toThrow(/node\/bin\/node: missing/);

    // Fixed: the node binary of this machine, the wrong addons gone.
    place(tree, "node/bin/node", realpathSync(process.execPath));
    rmSync(join(tree, "app/node_modules/fake"), { recursive: true });
    rmSync(join(tree, "app/node_modules/other"), { recursive: true, force: true });
    expect(findElfProblems(tree, TARGETS[host])).toEqual([]);
    expect(() => checkElfFiles(tree, TARGETS[host])).not.toThrow();
    // The same tree for the other architecture: every binary is refused.
    expect(
      findElfProblems(tree, TARGETS[foreign])
        .map((p) => p.file)
        .sort(),
    ).toEqual(["app/node_modules/good/build/Release/good.node", "node/bin/node"]);
  });
});

describe("the module-version check", () => {
  it("refuses an addon registered for another Node's module version, naming it and both versions", () => {
    if (!hasTool("gcc", "the module-version check")) return;
    const tree = join(dir, "abi");
    // What node.h's NODE_MODULE_INIT exports: the registration symbol carries NODE_MODULE_VERSION.
    place(
      tree,
      "app/node_modules/old/old.node",
      compileShared("gcc", join(dir, "v115.so"), "void node_register_module_v115(void) {}"),
    );
    place(
      tree,
      "app/node_modules/new/new.node",
      compileShared("gcc", join(dir, "v127.so"), "void node_register_module_v127(void) {}"),
    );
    place(
      tree,
      "app/node_modules/napi/napi.node",
      compileShared("gcc", join(dir, "napi.so"), "void napi_register_module_v1(void) {}"),
    );
    expect(findModuleVersionProblems(tree, 127)).toEqual([
      {
        file: "app/node_modules/old/old.node",
        is: "built for Node module version 115, not 127 (the bundled runtime's): built against another Node's headers",
      },
    ]);
  });
});
