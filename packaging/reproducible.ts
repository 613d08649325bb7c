import { chmodSync, lstatSync, lutimesSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { PackagingError } from "./errors.js";
import { run } from "./run.js";

/**
 * What makes two builds of the same commit give the same files: one timestamp for everything
 * (SOURCE_DATE_EPOCH, https://reproducible-builds.org/specs/source-date-epoch/: the last commit's
 * time unless the environment sets it), modes that do not depend on the builder's umask, and (in the
 * archive writers) sorted entries owned by root.
 */
export function sourceDateEpoch(repoRoot: string): number {
  const fromEnv = process.env.SOURCE_DATE_EPOCH;
  if (fromEnv !== undefined && fromEnv !== "") {
    if (!/^\d+$/.test(fromEnv))
      throw new PackagingError(`SOURCE_DATE_EPOCH must be whole seconds since 1970, got "${fromEnv}"`);
    return Number(fromEnv);
  }
  const out = run("git", ["log", "-1", "--format=%ct"], {
    what: "reading the last commit's time (SOURCE_DATE_EPOCH)",
    cwd: repoRoot,
    capture: true,
    install: "git",
  }).trim();
  if (!/^\d+$/.test(out))
    throw new PackagingError(
      `not a git checkout with a commit (${repoRoot}): set SOURCE_DATE_EPOCH to build without one`,
    );
  return Number(out);
}

/** The commit a build is of: HEAD, with "+dirty" when tracked files differ from it. */
export function sourceCommit(repoRoot: string): string {
  const what = "reading the commit (git)";
  const head = run("git", ["rev-parse", "HEAD"], {
    what,
    cwd: repoRoot,
    capture: true,
    install: "git",
  }).trim();
  const dirty = run("git", ["status", "--porcelain", "--untracked-files=no"], {
    what,
    cwd: repoRoot,
    capture: true,
  }).trim();
  return dirty ? `${head}+dirty` : head;
}

/**
 * Directories 0755; files 0755 if anyone could execute them, else 0644; every mtime the epoch
 * (symbolic links' own, not their targets').
 */
export function normalizeTree(root: string, epoch: number): void {
  const visit = (path: string) => {
    const stat = lstatSync(path);
    if (stat.isDirectory()) {
      chmodSync(path, 0o755);
      for (const entry of readdirSync(path)) visit(join(path, entry));
    } else if (stat.isFile()) chmodSync(path, stat.mode & 0o111 ? 0o755 : 0o644);
    lutimesSync(path, epoch, epoch);
  };
  visit(root);
}
