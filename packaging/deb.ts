import { createHash } from "node:crypto";
import {
  copyFileSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { controlText, type ControlFields } from "./control.js";
import { listFiles } from "./manifest.js";
import { normalizeTree } from "./reproducible.js";
import { run } from "./run.js";
import { renderScript } from "./scripts.js";

/** Where the release tree goes in the package: replaced by every upgrade; postinst hard-links it into /opt. */
export const DEB_RELEASE_DIR = "usr/lib/greenwave/release";

/** Files of the package that are the administrator's: dpkg keeps their changes across upgrades. */
export const CONFFILES = ["/etc/greenwave/intersection.yaml", "/etc/greenwave/gateway.env"];

const MAINTAINER_SCRIPTS = ["preinst", "postinst", "prerm", "postrm"] as const;

/**
 * Lays out the package's file system around a finished release tree (moved, not copied, into
 * usr/lib/greenwave/release), following the field contract:
 *   /usr/bin/greenwave -> /opt/greenwave/current/bin/greenwave
 *   /lib/systemd/system/greenwave.service, /usr/lib/sysusers.d/greenwave.conf, /usr/lib/tmpfiles.d/greenwave.conf
 *   /usr/share/doc/greenwave/{copyright,examples/*}
 *   /etc/greenwave/{intersection.yaml,gateway.env} (conffiles)
 * and its DEBIAN/ (control, conffiles, md5sums, maintainer scripts).
 */
export function layOutDebRoot(options: {
  readonly repoRoot: string;
  readonly debRoot: string;
  readonly tree: string;
  readonly version: string;
}): void {
  const { repoRoot, debRoot, tree, version } = options;
  const at = (path: string) => join(debRoot, path);
  const release = at(DEB_RELEASE_DIR);
  mkdirSync(join(release, ".."), { recursive: true });
  renameSync(tree, release);
  const system = (name: string) => join(release, "system", name);

  mkdirSync(at("usr/bin"), { recursive: true });
  symlinkSync("/opt/greenwave/current/bin/greenwave", at("usr/bin/greenwave"));
  mkdirSync(at("lib/systemd/system"), { recursive: true });
  copyFileSync(system("greenwave.service"), at("lib/systemd/system/greenwave.service"));
  mkdirSync(at("usr/lib/sysusers.d"), { recursive: true });
  copyFileSync(system("sysusers.conf"), at("usr/lib/sysusers.d/greenwave.conf"));
  mkdirSync(at("usr/lib/tmpfiles.d"), { recursive: true });
  copyFileSync(system("tmpfiles.conf"), at("usr/lib/tmpfiles.d/greenwave.conf"));
  mkdirSync(at("usr/share/doc/greenwave/examples"), { recursive: true });
  for (const name of ["99-greenwave-serial.rules", "intersection.yaml", "gateway.env"])
    copyFileSync(system(name), at(`usr/share/doc/greenwave/examples/${name}`));
  writeFileSync(at("usr/share/doc/greenwave/copyright"), copyright());
  mkdirSync(at("etc/greenwave"), { recursive: true });
  for (const conffile of CONFFILES) copyFileSync(system(conffile.split("/").pop() as string), at(conffile));

  mkdirSync(at("DEBIAN"), { recursive: true });
  for (const script of MAINTAINER_SCRIPTS)
    writeFileSync(at(`DEBIAN/${script}`), renderScript(repoRoot, script, version), { mode: 0o755 });
  writeFileSync(at("DEBIAN/conffiles"), `${CONFFILES.join("\n")}\n`);
}

/** Installed-Size in KiB, as dpkg-gencontrol counts it: each file rounded up to a KiB, one per directory or link. */
export function installedKiB(debRoot: string): number {
  let kib = 0;
  for (const path of listFiles(debRoot)) {
    if (path.startsWith("DEBIAN/")) continue;
    const stat = lstatSync(join(debRoot, path));
    kib += stat.isFile() ? Math.ceil(stat.size / 1024) : 1;
  }
  return kib;
}

/** Writes DEBIAN/control and DEBIAN/md5sums (conffiles excepted: dpkg keeps their sums itself), then builds the .deb. */
export function writeDeb(options: {
  readonly debRoot: string;
  readonly control: Omit<ControlFields, "installedKiB">;
  readonly epoch: number;
  readonly out: string;
}): string {
  const { debRoot, control, epoch, out } = options;
  const control_ = controlText({ ...control, installedKiB: installedKiB(debRoot) });
  writeFileSync(join(debRoot, "DEBIAN", "control"), control_);
  const md5sums = listFiles(debRoot)
    .filter((path) => !path.startsWith("DEBIAN/") && !CONFFILES.includes(`/${path}`))
    .filter((path) => lstatSync(join(debRoot, path)).isFile())
    .map(
      (path) =>
        `${createHash("md5")
          .update(readFileSync(join(debRoot, path)))
          .digest("hex")}  ${path}`,
    );
  writeFileSync(join(debRoot, "DEBIAN", "md5sums"), `${md5sums.join("\n")}\n`);
  normalizeTree(debRoot, epoch);
  const partial = `${out}.partial`;
  // --root-owner-group: every file root:root whoever builds; xz as Debian's own packages.
  // SOURCE_DATE_EPOCH: dpkg-deb dates the ar members and clamps the tar entries with it.
  run("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", debRoot, partial], {
    what: "building the .deb (dpkg-deb)",
    env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) },
    capture: true,
    install: "dpkg",
  });
  renameSync(partial, out);
  return control_;
}

function copyright(): string {
  return [
    "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/",
    "Upstream-Name: greenwave",
    "",
    "Files: *",
    "License: Apache-2.0",
    " On Debian systems, the full text of the Apache License 2.0 is in",
    " /usr/share/common-licenses/Apache-2.0.",
    "",
    "Files: usr/lib/greenwave/release/node/*",
    "License: MIT and others",
    " The bundled Node.js runtime. Its licence, and those of the libraries built",
    " into it, are in /usr/lib/greenwave/release/node/LICENSE.",
    "",
    "Files: usr/lib/greenwave/release/app/node_modules/*",
    "License: various (MIT, ISC, BSD, Apache-2.0, public domain)",
    " The production dependencies; each one's licence is in its directory.",
    "",
  ].join("\n");
}
