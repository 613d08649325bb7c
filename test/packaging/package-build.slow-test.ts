import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findElfProblems } from "../../packaging/elf.js";
import { listFiles, MANIFEST, manifestText, parseManifest } from "../../packaging/manifest.js";
import { NODE_VERSION } from "../../packaging/runtime.js";
import { type DebArch, hostDebArch, TARGETS } from "../../packaging/target.js";

/**
 * `npm run package` as a release engineer runs it, for this machine's architecture: the .deb and the
 * .tar.gz hold the field contract's tree and system files, every binary is of the target, the release
 * runs on its bundled Node (not this machine's), and a second build from the same sources gives the
 * same bytes. Minutes: `npm run package:test`, never `npm test`.
 */
const repoRoot = new URL("../..", import.meta.url).pathname;
const arch = hostDebArch() as DebArch;
const version = (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string })
  .version;
const EPOCH = 1_700_000_000;
const work = mkdtempSync(join(tmpdir(), "greenwave-package-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const name = `greenwave_${version}_${arch}`;

function build(out: string) {
  const began = performance.now();
  const r = spawnSync("npm", ["run", "package", "--", "--arch", arch, "--out", out], {
    cwd: repoRoot,
    encoding: "utf8",
    env: { ...process.env, SOURCE_DATE_EPOCH: String(EPOCH) },
  });
  if (r.status !== 0) throw new Error(`npm run package failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  process.stderr.write(`built in ${Math.round((performance.now() - began) / 1000)} s:\n${r.stdout}`);
  return r.stdout;
}

function must(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): string {
  const r = spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options });
  if (r.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (exit ${r.status}): ${r.stderr}`);
  return r.stdout;
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

const first = join(work, "first");
const deb = join(first, `${name}.deb`);
const tarball = join(first, `${name}.tar.gz`);
const debRoot = join(work, "deb-root");
const tarRoot = join(work, "tar-root");
const tree = join(tarRoot, `greenwave-${version}`);
let summary = "";

beforeAll(() => {
  summary = build(first);
  mkdirSync(tarRoot);
  must("tar", ["-xzf", tarball, "-C", tarRoot]);
  must("dpkg-deb", ["-x", deb, debRoot]);
});

describe(`npm run package -- --arch ${arch}`, () => {
  it("says what it built", () => {
    expect(summary).toContain(`greenwave ${version} for ${arch}`);
    expect(summary).toContain(`${name}.deb`);
    expect(summary).toContain(`SOURCE_DATE_EPOCH ${EPOCH}`);
  });

  it("writes a .deb whose control file names the package, the target and only what a minimal Debian has", () => {
    const field = (f: string) => must("dpkg-deb", ["-f", deb, f]).trim();
    expect(field("Package")).toBe("greenwave");
    expect(field("Version")).toBe(version);
    expect(field("Architecture")).toBe(arch);
    expect(field("Depends")).toMatch(/^libc6 \(>= 2\.\d+\), libgcc-s1, libstdc\+\+6 \(>= \d+\), passwd$/);
    expect(must("dpkg-deb", ["-I", deb, "conffiles"])).toBe(
      "/etc/greenwave/intersection.yaml\n/etc/greenwave/gateway.env\n",
    );
    for (const script of ["preinst", "postinst", "prerm", "postrm"])
      expect(must("dpkg-deb", ["-I", deb, script]).startsWith("#!/bin/sh\n"), script).toBe(true);
  });

  it("lays out the .deb as the field contract says, every entry root's and dated SOURCE_DATE_EPOCH", () => {
    const listing = must("dpkg-deb", ["-c", deb]).trim().split("\n");
    for (const line of listing) expect(line, line).toMatch(/^\S+ root\/root /);
    for (const path of [
      "usr/lib/greenwave/release/bin/greenwave",
      "usr/lib/greenwave/release/node/bin/node",
      "usr/lib/greenwave/release/node/LICENSE",
      "usr/lib/greenwave/release/app/package.json",
      "usr/lib/greenwave/release/app/dist/gateway/cli/main.js",
      "usr/lib/greenwave/release/app/config/corridor.yaml",
      "usr/lib/greenwave/release/release.json",
      "usr/lib/greenwave/release/MANIFEST",
      "usr/lib/greenwave/release/install.sh",
      "lib/systemd/system/greenwave.service",
      "usr/lib/sysusers.d/greenwave.conf",
      "usr/lib/tmpfiles.d/greenwave.conf",
      "usr/share/doc/greenwave/copyright",
      "usr/share/doc/greenwave/examples/99-greenwave-serial.rules",
      "usr/share/doc/greenwave/examples/intersection.yaml",
      "usr/share/doc/greenwave/examples/gateway.env",
      "etc/greenwave/intersection.yaml",
      "etc/greenwave/gateway.env",
    ])
      expect(lstatSync(join(debRoot, path)).isFile(), path).toBe(true);
    for (const file of [
      "greenwave.service",
      "sysusers.conf",
      "tmpfiles.conf",
      "99-greenwave-serial.rules",
      "intersection.yaml",
      "gateway.env",
    ])
      expect(lstatSync(join(debRoot, "usr/lib/greenwave/release/system", file)).isFile(), file).toBe(true);
    expect(readlinkSync(join(debRoot, "usr/bin/greenwave"))).toBe("/opt/greenwave/current/bin/greenwave");
    for (const path of listFiles(debRoot))
      expect(lstatSync(join(debRoot, path)).mtimeMs / 1000, path).toBe(EPOCH);
    // The tree in the .deb is the tarball's.
    expect(readFileSync(join(debRoot, "usr/lib/greenwave/release", MANIFEST), "utf8")).toBe(
      readFileSync(join(tree, MANIFEST), "utf8"),
    );
  });

  it("writes a .tar.gz of greenwave-<version>/, owned by 0:0, whose MANIFEST is every file with its size and sha256", () => {
    const listing = must("tar", ["-tzvf", tarball, "--numeric-owner"]).trim().split("\n");
    for (const line of listing)
      expect(line, line).toMatch(new RegExp(`^\\S+ 0/0 .* greenwave-${version.replaceAll(".", "\\.")}/`));
    const manifest = readFileSync(join(tree, MANIFEST), "utf8");
    expect(manifestText(tree)).toBe(manifest);
    const entries = parseManifest(manifest);
    expect(entries.map((e) => e.path)).toEqual(listFiles(tree).filter((p) => p !== MANIFEST));
    for (const entry of entries.slice(0, 50))
      expect(sha256(join(tree, entry.path)), entry.path).toBe(entry.sha256);
    expect(JSON.parse(readFileSync(join(tree, "release.json"), "utf8"))).toEqual({
      version,
      arch,
      node: NODE_VERSION,
      schemaVersion: expect.any(Number),
      commit: expect.stringMatching(/^[0-9a-f]{40}(\+dirty)?$/),
    });
  });

  it("ships what runs and nothing that only builds: no headers, npm, build intermediates or other platforms' prebuilds", () => {
    const files = listFiles(tree);
    expect(files.filter((f) => f.startsWith("node/"))).toEqual(["node/LICENSE", "node/bin/node"]);
    const forbidden = files.filter(
      (f) =>
        /\/(obj\.target|\.deps)\//.test(f) ||
        f.endsWith("test_extension.node") ||
        f.includes("better-sqlite3/deps/") ||
        /\.(ts|map)$/.test(f) ||
        (f.includes("/prebuilds/") && !f.includes(`/prebuilds/linux-${TARGETS[arch].nodeArch}/`)) ||
        f.startsWith("app/dist/bench/") ||
        f.startsWith("app/dist/packaging/") ||
        f.startsWith("app/config/broken/"),
    );
    expect(forbidden).toEqual([]);
    expect(files.filter((f) => f.endsWith(".node")).length).toBe(3);
    expect(findElfProblems(tree, TARGETS[arch])).toEqual([]);
  });

  it(`runs on its bundled Node ${NODE_VERSION}, native addons included, with no Node on the PATH`, () => {
    const env = { PATH: "/usr/bin:/bin" };
    expect(must(join(tree, "bin/greenwave"), ["--version"], { env }).trim()).toBe(version);
    expect(must(join(tree, "node/bin/node"), ["--version"], { env }).trim()).toBe(`v${NODE_VERSION}`);
    const script = [
      "const { createRequire } = require('node:module');",
      "const r = createRequire(process.argv[1] + '/app/');",
      "const Database = r('better-sqlite3');",
      "const db = new Database(':memory:');",
      "console.log(db.prepare('select sqlite_version() as v').get().v);",
      "r('unix-dgram').createSocket('unix_dgram').close();",
      "r('@serialport/bindings-cpp').autoDetect();",
      "console.log('addons ok');",
    ].join("\n");
    expect(must(join(tree, "node/bin/node"), ["-e", script, tree], { env })).toMatch(
      /^3\.\d+\.\d+\naddons ok\n$/,
    );
    // The example configuration checks, once its paths point into this tree instead of /opt/greenwave/current.
    const example = readFileSync(join(tree, "system/intersection.yaml"), "utf8").replaceAll(
      "/opt/greenwave/current/app/config",
      join(tree, "app/config"),
    );
    writeFileSync(join(work, "intersection.yaml"), example);
    expect(
      must(join(tree, "bin/greenwave"), ["config", "check", join(work, "intersection.yaml")], { env }),
    ).toMatch(/^ok {2}intersection elm/);
  });

  it("builds the same bytes a second time, in another directory", () => {
    const second = join(work, "second");
    build(second);
    // First which files differ (MANIFEST: path, size, sha256), which says why; then the archives' bytes.
    // (Built from a working copy that someone edits meanwhile, the sources differ: app/dist, release.json.)
    const manifest = (t: string) => must("tar", ["-xzOf", t, `greenwave-${version}/${MANIFEST}`]).split("\n");
    const [a, b] = [manifest(tarball), manifest(join(second, `${name}.tar.gz`))];
    const differ = [
      ...a.filter((l) => !b.includes(l)).map((l) => `- ${l}`),
      ...b.filter((l) => !a.includes(l)).map((l) => `+ ${l}`),
    ];
    expect(differ, "MANIFEST lines that differ between the two builds").toEqual([]);
    expect(sha256(join(second, `${name}.deb`)), "the .deb").toBe(sha256(deb));
    expect(sha256(join(second, `${name}.tar.gz`)), "the .tar.gz").toBe(sha256(tarball));
  });
});
