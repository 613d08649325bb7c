import { claimPidFile } from "../gateway/store/pid-file.js";
import { PackagingError } from "./errors.js";

/**
 * One build per output directory and architecture at a time: a second one would delete the first
 * one's work directory under it. The lock file holds the builder's pid; a lock whose process is gone
 * (a build killed mid-way) is taken over.
 */
export function lockWorkDir(lockFile: string, what: string): () => void {
  const claim = claimPidFile(lockFile);
  if (claim.taken) return claim.release;
  if (claim.holder !== null)
    throw new PackagingError(
      `another build of ${what} is running (pid ${claim.holder}, ${lockFile}): wait for it, or build into another --out`,
    );
  throw new PackagingError(`cannot take ${lockFile}: remove it if no build is running`);
}
