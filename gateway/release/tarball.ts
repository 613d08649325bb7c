import { spawnSync } from "node:child_process";
import { lstatSync, readdirSync, readlinkSync } from "node:fs";
import { join, posix, relative } from "node:path";
import { ReleaseError } from "./errors.js";
import { checkVersion } from "./manifest.js";

/**
 * A release tarball (`greenwave-<version>.tar.gz`, top directory `greenwave-<version>/`), checked
 * before a byte of it is written: GNU tar lists it (bounded: entries, bytes, time), and every entry
 * must be a file, directory, symbolic or hard link under that top directory — no absolute name, no
 * `..`, no device or FIFO, no link that leads out of the release. Then it is extracted into a
 * staging directory (no owners from the archive), and the links are checked again on disk.
 */

/** A release is a few thousand files and ~150 MB unpacked: far past these, it is not one. */
export const MAX_ENTRIES = 200_000;
export const MAX_UNPACKED_BYTES = 2 * 1024 ** 3;
/** Listing or extracting decompresses the whole file: minutes on a Pi's SD card at most. */
const TAR_BOUND_MS = 600_000;

export interface TarEntry {
  /** GNU tar's type letter: - d l h (c b p s are refused). */
  readonly type: string;
  readonly name: string;
  readonly size: number;
  /** Symbolic link target, or the name a hard link refers to. */
  readonly link: string | null;
}

function tar(args: string[], what: string, file: string): string {
  const result = spawnSync("tar", args, {
    encoding: "utf8",
    env: { ...process.env, LC_ALL: "C" },
    maxBuffer: 128 * 1024 * 1024,
    timeout: TAR_BOUND_MS,
    killSignal: "SIGKILL",
  });
  if (result.error) throw new ReleaseError(`cannot ${what} ${file}: ${result.error.message}`);
  if (result.status !== 0)
    throw new ReleaseError(
      `cannot ${what} ${file}: tar says ${result.stderr.trim().split("\n").slice(-3).join("; ") || `exit ${result.status}`}: the file is damaged or not a .tar.gz; download it again`,
    );
  return result.stdout;
}

const LINE = /^(\S)\S{9}\s+\S+\s+(\S+)\s+\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d(?:\.\d+)?)?\s(.*)$/;

export function listTarball(file: string): TarEntry[] {
  const out = tar(["-tvzf", file, "--full-time", "--quoting-style=escape", "--numeric-owner"], "list", file);
  const entries: TarEntry[] = [];
  for (const line of out.split("\n")) {
    if (line === "") continue;
    const match = LINE.exec(line);
    if (!match) throw new ReleaseError(`${file}: cannot read the listing line "${line.slice(0, 200)}"`);
    const [, type, size, rest] = match as unknown as [string, string, string, string];
    const separator = type === "l" ? " -> " : type === "h" ? " link to " : null;
    const at = separator ? rest.indexOf(separator) : -1;
    entries.push({
      type,
      name: at >= 0 ? rest.slice(0, at) : rest,
      size: /^\d+$/.test(size) ? Number(size) : 0,
      link: separator && at >= 0 ? rest.slice(at + (separator as string).length) : null,
    });
    if (entries.length > MAX_ENTRIES)
      throw new ReleaseError(`${file} has more than ${MAX_ENTRIES} entries: not a greenwave release`);
  }
  return entries;
}

/** Where a name leads, relative to the archive's root; null when it leaves it. */
function inside(path: string): string | null {
  if (path.startsWith("/")) return null;
  const normal = posix.normalize(path).replace(/\/+$/, "") || ".";
  return normal === ".." || normal.startsWith("../") ? null : normal;
}

/** Checks every entry; returns the version its top directory names. */
export function checkEntries(entries: readonly TarEntry[], file: string): string {
  const refuse = (entry: TarEntry, why: string): never => {
    throw new ReleaseError(
      `${file}: refused: the entry "${entry.name}" ${why}; a release tarball never has one (damaged or tampered with)`,
    );
  };
  let top: string | null = null;
  let bytes = 0;
  for (const entry of entries) {
    if (!["-", "d", "l", "h"].includes(entry.type))
      refuse(entry, `is of type "${entry.type}" (a device, FIFO or socket)`);
    if (entry.name.startsWith("/")) refuse(entry, "is an absolute path");
    if (entry.name.split("/").includes("..")) refuse(entry, 'has a ".." component');
    const name = inside(entry.name) as string;
    if (name === "." && entry.type === "d") continue; // "./", as `tar -C dir .` writes it
    const first = name.split("/")[0] as string;
    top ??= first;
    if (first !== top) refuse(entry, `is outside the top directory ${top}/`);
    if (entry.type === "l") {
      const target = entry.link ?? "";
      const resolved = target.startsWith("/") ? null : inside(posix.join(posix.dirname(name), target));
      if (resolved === null || resolved.split("/")[0] !== top)
        refuse(entry, `is a link to ${target}, outside the release`);
    }
    if (entry.type === "h") {
      const target = inside(entry.link ?? "/");
      if (target === null || target.split("/")[0] !== top)
        refuse(entry, `is a hard link to ${entry.link}, outside the release`);
    }
    bytes += entry.size;
    if (bytes > MAX_UNPACKED_BYTES)
      throw new ReleaseError(
        `${file} unpacks to more than ${MAX_UNPACKED_BYTES} bytes: not a greenwave release`,
      );
  }
  if (top === null) throw new ReleaseError(`${file} is empty`);
  if (!top.startsWith("greenwave-"))
    throw new ReleaseError(
      `${file}: its top directory is ${top}/, not greenwave-<version>/: not a greenwave release tarball`,
    );
  return checkVersion(top.slice("greenwave-".length), file);
}

/** Extracts into `into` (an empty staging directory); owners are not taken from the archive. */
export function extractTarball(file: string, into: string): void {
  tar(["-xzf", file, "-C", into, "--no-same-owner", "--delay-directory-restore"], "extract", file);
}

/** After extraction: every symbolic link on disk must still lead inside `release`. */
export function checkLinksOnDisk(release: string): void {
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isSymbolicLink()) {
        const target = readlinkSync(path);
        const resolved = target.startsWith("/") ? null : inside(relative(release, join(dir, target)));
        if (resolved === null)
          throw new ReleaseError(
            `${path} links to ${target}, outside the release: refused (damaged or tampered with)`,
          );
      } else if (entry.isDirectory()) walk(path);
      else if (!entry.isFile()) throw new ReleaseError(`${path} is not a file, directory or link: refused`);
    }
  };
  if (!lstatSync(release).isDirectory()) throw new ReleaseError(`${release} is not a directory`);
  walk(release);
}
