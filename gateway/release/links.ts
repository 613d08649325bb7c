import { closeSync, fsyncSync, openSync, readlinkSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ReleaseError } from "./errors.js";
import type { InstallPaths } from "./paths.js";

/**
 * The `current` and `previous` links. Each is replaced atomically (a new link under a temporary name,
 * renamed over the old one, the directory fsynced): /usr/bin/greenwave resolves through `current`, so
 * at every instant it names a whole release, and a power cut leaves either the old link or the new.
 */

export interface Links {
  readonly current: string | null;
  readonly previous: string | null;
}

/** The version a link points at (`releases/<version>`), or null when there is no link. */
export function readLink(link: string): string | null {
  let target: string;
  try {
    target = readlinkSync(link);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    if (code === "EINVAL")
      throw new ReleaseError(`${link} is not a symbolic link: move it aside, then activate a release again`);
    throw new ReleaseError(`cannot read ${link}: ${(error as Error).message}`);
  }
  if (basename(dirname(target)) !== "releases")
    throw new ReleaseError(
      `${link} points at ${target}, not at releases/<version>: fix it by hand (ln -sfn releases/<version> ${link})`,
    );
  return basename(target);
}

export function readLinks(paths: InstallPaths): Links {
  return { current: readLink(paths.current), previous: readLink(paths.previous) };
}

/** Points `link` at releases/<version> (relative, as the contract has it), or removes it for null. */
export function pointLink(link: string, version: string | null): void {
  if (version === null) {
    rmSync(link, { force: true });
  } else {
    const temporary = join(dirname(link), `.${basename(link)}.${process.pid}.new`);
    rmSync(temporary, { force: true });
    symlinkSync(`releases/${version}`, temporary);
    renameSync(temporary, link);
  }
  syncDirectory(dirname(link));
}

/** Sets both links, `previous` first: cut between the two, both name a release that was whole. */
export function setLinks(paths: InstallPaths, links: Links): void {
  pointLink(paths.previous, links.previous);
  pointLink(paths.current, links.current);
}

export function syncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
