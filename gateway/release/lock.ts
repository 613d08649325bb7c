import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { ReleaseError } from "./errors.js";

/**
 * One activation at a time (dpkg's postinst and a technician's `greenwave upgrade` could meet): a lock
 * file holding the holder's pid, created exclusively. A lock whose process is gone (a power cut, a
 * kill -9) is taken over: the pid says so.
 */
export function takeLock(file: string): () => void {
  mkdirSync(dirname(file), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: "wx" });
      return () => rmSync(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = Number(readFileSync(file, "utf8").trim());
    if (Number.isInteger(holder) && holder > 0 && alive(holder))
      throw new ReleaseError(
        `another activation (pid ${holder}) is running: wait for it to end (it holds ${file})`,
      );
    rmSync(file, { force: true });
  }
  throw new ReleaseError(`cannot take the activation lock ${file}: another activation keeps taking it`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
