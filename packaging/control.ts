import type { DebArch } from "./target.js";

/**
 * DEBIAN/control of the greenwave package (Debian Policy 5.3). Pure: the caller computes the
 * installed size and the library dependencies from the tree.
 */
export interface ControlFields {
  readonly version: string;
  readonly arch: DebArch;
  readonly maintainer: string;
  readonly installedKiB: number;
  /** From the ELF files (shlib-depends.ts), plus passwd: see DEPENDS_OF_SCRIPTS. */
  readonly libraryDepends: readonly string[];
  readonly nodeVersion: string;
}

/**
 * What the maintainer scripts run that Debian does not mark Essential: useradd, groupadd and usermod
 * (the postinst's fallback when systemd-sysusers is missing, as on a minimal Debian) come from passwd.
 * It is Priority: required, so this never pulls anything in; declaring it is what Policy asks.
 * Not systemd: the package installs and runs without it (a container, a chroot), and a gateway with
 * systemd has it anyway. Not adduser: useradd does the job.
 */
export const DEPENDS_OF_SCRIPTS = ["passwd"];

/** Debian's version syntax, the upstream part only (no epoch, no revision): what package.json may hold. */
export const DEBIAN_VERSION = /^[0-9][A-Za-z0-9.+~]*$/;

export function controlText(fields: ControlFields): string {
  const depends = [...fields.libraryDepends, ...DEPENDS_OF_SCRIPTS].join(", ");
  return [
    "Package: greenwave",
    `Version: ${fields.version}`,
    `Architecture: ${fields.arch}`,
    `Maintainer: ${fields.maintainer}`,
    `Installed-Size: ${fields.installedKiB}`,
    `Depends: ${depends}`,
    "Section: misc",
    "Priority: optional",
    "Description: runtime for roadside traffic-signal gateways",
    " greenwave drives one intersection's signal lamps through Modbus I/O modules",
    " (RTU or TCP): fixed-time plans with a software conflict monitor, all-red flash",
    " on any fault, MQTT to its operators and neighbours, and atomic plan switches",
    " across a corridor.",
    " .",
    ` The package is self-contained: it bundles Node.js ${fields.nodeVersion} and every`,
    " dependency built for this architecture, so it installs offline and needs no",
    " compiler and no Node.js on the device. It runs as the systemd service",
    " greenwave.service (Type=notify, with a watchdog) as the user greenwave.",
    "",
  ].join("\n");
}
