import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { renderScript, type ScriptName } from "../../packaging/scripts.js";

/**
 * The maintainer scripts' shared steps (packaging/scripts/common.sh) run by sh on a directory that
 * stands in for /: installing a release tree, activating it with or without `greenwave release
 * activate`, refusing one that does not run, and pruning old releases. The whole postinst runs in a
 * clean Debian root in the install test (test/package/).
 */
const repoRoot = new URL("../..", import.meta.url).pathname;
const COMMON = join(repoRoot, "packaging", "scripts", "common.sh");
const base = mkdtempSync(join(tmpdir(), "greenwave-scripts-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let root = "";
beforeEach(() => {
  root = mkdtempSync(join(base, "root-"));
});
const opt = () => join(root, "opt", "greenwave");

/** Runs common.sh's functions with every path under `root`, and no systemd (this machine's is not ours to restart). */
function sh(script: string) {
  const harness = [
    `. '${COMMON}'`,
    `GW_OPT='${opt()}'`,
    `GW_RELEASES='${opt()}/releases'`,
    `GW_STATE='${root}/var/lib/greenwave'`,
    `GW_ETC='${root}/etc/greenwave'`,
    "gw_has_systemd() { return 1; }",
    "set -e",
    script,
  ].join("\n");
  return spawnSync("sh", ["-c", harness], { encoding: "utf8" });
}

/**
 * A release tree whose bin/greenwave answers --version and --help like the real one; `activate`: its
 * help lists `release activate`, which records its call.
 */
function releaseTree(
  dir: string,
  version: string,
  options: { activate?: boolean; says?: string } = {},
): string {
  mkdirSync(join(dir, "bin"), { recursive: true });
  const help = options.activate
    ? "echo '  release                   the releases installed on a gateway'"
    : ":";
  writeFileSync(
    join(dir, "bin", "greenwave"),
    [
      "#!/bin/sh",
      'case "$1" in',
      `  --version) echo '${options.says ?? version}' ;;`,
      `  --help) echo 'Commands:'; echo '  gateway [options]         run one intersection'; ${help} ;;`,
      `  release) if [ "$2" = --help ]; then echo "  activate [options] <version>  make it current"; else echo "activate $3" >> '${root}/activations'; fi ;;`,
      "esac",
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  writeFileSync(join(dir, "release.json"), JSON.stringify({ version }));
  return dir;
}

function install(version: string, options: { activate?: boolean; says?: string } = {}) {
  const tree = releaseTree(join(root, `src-${version}`), version, options);
  const r = sh(`gw_install_release '${tree}' '${version}' link`);
  expect(r.status, r.stderr).toBe(0);
  return tree;
}

const link = (name: string) => (existsSync(join(opt(), name)) ? readlinkSync(join(opt(), name)) : null);

describe("common.sh", () => {
  it("installs a release tree as hard links, and a reinstall of the same version replaces it whole", () => {
    const tree = install("1.0.0");
    const installed = join(opt(), "releases", "1.0.0", "bin", "greenwave");
    expect(statSync(installed).ino).toBe(statSync(join(tree, "bin", "greenwave")).ino);
    // A new build of the same version, its files replaced the way dpkg replaces them: by a rename
    // over the old name (the installed release keeps the old inode).
    writeFileSync(join(tree, "release.json.new"), JSON.stringify({ version: "1.0.0", rebuilt: true }));
    renameSync(join(tree, "release.json.new"), join(tree, "release.json"));
    expect(readFileSync(join(opt(), "releases", "1.0.0", "release.json"), "utf8")).not.toContain("rebuilt");
    const r = sh(`gw_install_release '${tree}' 1.0.0 link`);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(opt(), "releases", "1.0.0", "release.json"), "utf8")).toContain("rebuilt");
    expect(readdirSync(join(opt(), "releases"))).toEqual(["1.0.0"]);
  });

  it("without `greenwave release activate`, switches current and previous itself", () => {
    install("1.0.0");
    install("1.1.0");
    let r = sh("gw_activate 1.0.0");
    expect(r.status, r.stderr).toBe(0);
    expect([link("current"), link("previous")]).toEqual(["releases/1.0.0", null]);
    expect(r.stdout).toContain(
      "has no `greenwave release activate`: switching the links without a health gate",
    );
    expect(r.stdout).toContain("no running systemd");
    r = sh("gw_activate 1.1.0");
    expect([link("current"), link("previous")]).toEqual(["releases/1.1.0", "releases/1.0.0"]);
    expect(r.stdout).toContain("current -> releases/1.1.0, previous -> releases/1.0.0");
    // Again: nothing changes.
    r = sh("gw_activate 1.1.0");
    expect(r.stdout).toContain("release 1.1.0 is already current");
    expect([link("current"), link("previous")]).toEqual(["releases/1.1.0", "releases/1.0.0"]);
  });

  it("hands over to `greenwave release activate` when the release has it", () => {
    install("1.2.0", { activate: true });
    const r = sh("gw_activate 1.2.0");
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(root, "activations"), "utf8")).toBe("activate 1.2.0\n");
    expect(link("current"), "the command switches, not the script").toBeNull();
  });

  it("refuses a release that does not run here or is not the version it should be, switching nothing", () => {
    install("1.3.0", { says: "9.9.9" });
    let r = sh("gw_check_release 1.3.0 && gw_activate 1.3.0");
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('release 1.3.0 says it is version "9.9.9": the release is damaged');
    install("1.4.0");
    // An ELF of no machine: the kernel refuses to run it, as it would a release of another architecture.
    writeFileSync(
      join(opt(), "releases", "1.4.0", "bin", "greenwave"),
      Buffer.from("\x7fELF\x02\x01\x01", "latin1"),
    );
    r = sh("gw_check_release 1.4.0 && gw_activate 1.4.0");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/release 1.4.0 does not run on this machine \(.+\): .*Nothing was switched/);
    expect(link("current")).toBeNull();
  });

  it("keeps current, previous and the newest other release; removes the rest and leftovers", () => {
    for (const v of ["1.0.0", "1.1.0", "1.2.0", "1.10.0", "2.0.0"]) install(v);
    mkdirSync(join(opt(), "releases", ".3.0.0.new"));
    sh("gw_activate 1.1.0 && gw_activate 1.2.0");
    const r = sh("gw_prune_releases");
    expect(r.status, r.stderr).toBe(0);
    // Version order, not text order: 1.10.0 is newer than 1.2.0, and 2.0.0 the newest.
    expect(readdirSync(join(opt(), "releases")).sort()).toEqual(["1.1.0", "1.2.0", "2.0.0"]);
    expect(r.stdout).toContain("removing old release 1.10.0");
    expect(r.stdout).toContain("removing old release 1.0.0");
  });
});

describe("the rendered scripts", () => {
  const scripts: ScriptName[] = ["launcher.sh", "install.sh", "preinst", "postinst", "prerm", "postrm"];
  it.each(scripts)("%s is POSIX sh with its version filled in", (name) => {
    const text = renderScript(repoRoot, name, "1.2.3");
    expect(text.startsWith("#!/bin/sh\n")).toBe(true);
    expect(text).not.toMatch(/@[A-Z]+@/);
    if (name !== "launcher.sh" && name !== "prerm") expect(text).toContain("1.2.3");
    if (name === "postinst" || name === "install.sh") expect(text).toContain("gw_activate()");
    const file = join(base, name);
    writeFileSync(file, text);
    // dash (Debian's /bin/sh) parses it; -n: read, never run.
    const r = spawnSync("sh", ["-n", file], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
  });
});
