import { openSync, readFileSync, rmSync, writeSync, closeSync } from "node:fs";
import { PackagingError } from "./errors.js";

/**
 * One build per output directory and architecture at a time: a second one would delete the first
 * one's work directory under it. The lock file holds the builder's pid; a lock whose process is gone
 * (a build killed mid-way) is taken over.
 */
export function lockWorkDir(lockFile: string, what: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockFile, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lockFile, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const pid = Number(readFileSync(lockFile, "utf8").trim());
      if (Number.isInteger(pid) && pid > 0 && alive(pid))
        throw new PackagingError(
          `another build of ${what} is running (pid ${pid}, ${lockFile}): wait for it, or build into another --out`,
        );
      rmSync(lockFile, { force: true });
    }
  }
  throw new PackagingError(`cannot take ${lockFile}: remove it if no build is running`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
