import { spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readSync } from "node:fs";
import { join } from "node:path";
import type { Launcher } from "../e2e/gateway-sim.js";

/**
 * The install test's view of a clean Debian root prepared by packaging/verify/verify.sh: which root,
 * which package, and how to run commands inside it (chroot) the way the system would.
 */

export type DebArch = "amd64" | "arm64";

export interface VerifyTarget {
  /** The fresh root, mounted (/proc, /sys, /dev); removed by verify.sh afterwards. */
  readonly root: string;
  /** The .deb under test, on the host. */
  readonly deb: string;
  readonly arch: DebArch;
  /** Where the figures go (JSON), or null. */
  readonly report: string | null;
}

export function verifyTarget(): VerifyTarget {
  const root = process.env.GREENWAVE_VERIFY_ROOT;
  const deb = process.env.GREENWAVE_VERIFY_DEB;
  const arch = process.env.GREENWAVE_VERIFY_ARCH;
  if (!root || !deb || (arch !== "amd64" && arch !== "arm64"))
    throw new Error(
      "the install test runs in a clean Debian root that packaging/verify/verify.sh prepares: run " +
        "`npm run package:check` (amd64) or `npm run package:verify -- --arch arm64`, as root " +
        "(GREENWAVE_VERIFY_ROOT, GREENWAVE_VERIFY_DEB and GREENWAVE_VERIFY_ARCH are not all set)",
    );
  if (!existsSync(join(root, "bin/sh")))
    throw new Error(`GREENWAVE_VERIFY_ROOT=${root} is not a root file system`);
  if (!existsSync(deb)) throw new Error(`GREENWAVE_VERIFY_DEB=${deb} does not exist`);
  return { root, deb, arch, report: process.env.GREENWAVE_VERIFY_REPORT || null };
}

/** Nothing of the test runner's environment (NODE_OPTIONS, vitest's variables) reaches the root. */
const CLEAN_ENV = [
  "/usr/bin/env",
  "-i",
  "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
  "DEBIAN_FRONTEND=noninteractive",
];

/**
 * Runs a command as root inside the root; SIGKILL at the deadline (a hung command must not hang the
 * test). `offline`: in a network namespace of its own (unshare --net), where no network exists at all.
 */
export function inRoot(root: string, args: string[], timeoutMs = 120_000, offline = false) {
  const chroot = ["chroot", root, ...CLEAN_ENV, ...args];
  const [command, ...rest] = (offline ? ["unshare", "--net", ...chroot] : chroot) as [string, ...string[]];
  return spawnSync(command, rest, {
    encoding: "utf8",
    timeout: timeoutMs,
    killSignal: "SIGKILL",
  });
}

/** Like inRoot, but a failure throws with the command's own output. */
export function mustRun(root: string, args: string[], timeoutMs?: number): string {
  const r = inRoot(root, args, timeoutMs);
  if (r.status !== 0)
    throw new Error(
      `\`${args.join(" ")}\` in ${root} failed (${r.error?.message ?? `exit ${String(r.status ?? r.signal)}`}):\n${r.stdout}${r.stderr}`,
    );
  return r.stdout;
}

/**
 * Starts commands inside the root as the service user, with the environment its login would have
 * (setpriv is in util-linux, part of every Debian system; it execs, so the spawned process is the
 * command itself and a signal sent to it reaches it).
 */
export function asServiceUser(root: string, command: string): Launcher {
  return [
    "chroot",
    root,
    "/usr/bin/setpriv",
    "--reuid=greenwave",
    "--regid=greenwave",
    "--init-groups",
    "--reset-env",
    "--",
    command,
  ];
}

/** ELF e_machine of each architecture: x86-64 and AArch64. */
export const ELF_MACHINE: Record<DebArch, number> = { amd64: 62, arm64: 183 };

/** The ELF machine of a binary (e_machine, little-endian), or null when it is not a 64-bit ELF file. */
export function elfMachine(path: string): number | null {
  const header = Buffer.alloc(20);
  const fd = openSync(path, "r");
  try {
    if (readSync(fd, header, 0, 20, 0) < 20) return null;
  } finally {
    closeSync(fd);
  }
  if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2) return null;
  return header.readUInt16LE(18);
}

/** Files under `dir` whose name ends with `suffix`, recursively (symbolic links not followed). */
export function filesEndingWith(dir: string, suffix: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(suffix))
    .map((e) => join(e.parentPath, e.name));
}

/** One user of the root's /etc/passwd. */
export function passwdEntry(root: string, user: string): { uid: number; gid: number } | null {
  const line = inRoot(root, ["getent", "passwd", user]).stdout.trim();
  const [, , uid, gid] = line.split(":");
  return line ? { uid: Number(uid), gid: Number(gid) } : null;
}

/**
 * The package's dependencies (Depends and Pre-Depends) that the root does not satisfy: each group of
 * alternatives with no installed member, as written in the control file.
 */
export function unmetDependencies(root: string, deb: string): string[] {
  const fields = spawnSync("dpkg-deb", ["-f", deb, "Depends", "Pre-Depends"], { encoding: "utf8" });
  if (fields.status !== 0) throw new Error(`dpkg-deb -f ${deb} failed: ${fields.stderr}`);
  const groups = fields.stdout
    .split("\n")
    .map((l) => l.replace(/^[\w-]+:\s*/, ""))
    .join(",")
    .split(",")
    .map((g) => g.trim())
    .filter(Boolean);
  return groups.filter(
    (group) =>
      !group.split("|").some((alt) => {
        const name = alt.trim().split(/[\s(:]/)[0] as string;
        const status = inRoot(root, ["dpkg-query", "-W", "-f=${Status}", name]).stdout;
        return status === "install ok installed";
      }),
  );
}
