import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface PtyPair {
  /** One end (for the slave). */
  readonly a: string;
  /** The other end (for the master). */
  readonly b: string;
  close(): Promise<void>;
}

/** A pseudo-terminal pair made with socat: what a null-modem cable between two serial ports is. */
export async function openPtyPair(): Promise<PtyPair> {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-pty-"));
  const a = join(dir, "a");
  const b = join(dir, "b");
  const socat: ChildProcess = spawn("socat", [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
    stdio: "ignore",
  });
  const deadline = Date.now() + 5_000;
  while (!(existsSync(a) && existsSync(b))) {
    if (Date.now() > deadline || socat.exitCode !== null)
      throw new Error("socat did not create the pty pair");
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    a,
    b,
    close: () =>
      new Promise<void>((done) => {
        const finish = () => {
          rmSync(dir, { recursive: true, force: true });
          done();
        };
        if (socat.exitCode !== null) return finish();
        socat.once("exit", finish);
        socat.kill("SIGTERM");
      }),
  };
}
