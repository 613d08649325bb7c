import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { claimPidFile } from "../store/pid-file.js";
import { ReleaseError } from "./errors.js";

/**
 * One activation at a time (dpkg's postinst and a technician's `greenwave upgrade` could meet): a lock
 * file holding the holder's pid, created exclusively. A lock whose process is gone (a power cut, a
 * kill -9) is taken over: the pid says so.
 */
export function takeLock(file: string): () => void {
  mkdirSync(dirname(file), { recursive: true });
  const claim = claimPidFile(file);
  if (claim.taken) return claim.release;
  if (claim.holder !== null)
    throw new ReleaseError(
      `another activation (pid ${claim.holder}) is running: wait for it to end (it holds ${file})`,
    );
  throw new ReleaseError(`cannot take the activation lock ${file}: another activation keeps taking it`);
}
