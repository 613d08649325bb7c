import { readFileSync, rmSync, writeFileSync } from "node:fs";

/**
 * Files that say which process holds something (an activation, a package build): created exclusively,
 * with the holder's pid; a file whose process is gone (a power cut, a kill -9) is taken over.
 */

/** Whether a process with this pid exists (EPERM: it does, and belongs to another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export type PidFileClaim =
  | { readonly taken: true; readonly release: () => void }
  /** holder: the live process that holds it; null: another process kept taking it over. */
  | { readonly taken: false; readonly holder: number | null };

/** Takes `file` for this process, unless a live process holds it. */
export function claimPidFile(file: string): PidFileClaim {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: "wx" });
      return { taken: true, release: () => rmSync(file, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = Number(readFileSync(file, "utf8").trim());
    if (Number.isInteger(holder) && holder > 0 && processAlive(holder)) return { taken: false, holder };
    rmSync(file, { force: true });
  }
  return { taken: false, holder: null };
}
