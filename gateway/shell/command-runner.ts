import { execFile } from "node:child_process";

/**
 * Running a system tool (timedatectl, chronyc, systemctl) and taking its output, bounded: every run
 * has a timeout and an output cap, and whatever goes wrong comes back as a result, never as a throw.
 * The port lets tests feed the tools' real output formats where the daemons do not run.
 */

export interface CommandResult {
  /** The exit code; null when the command did not run to an exit (see `failure`). */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Why there is no exit code: not installed, killed at its timeout, too much output, or another error. */
  readonly failure?: "not-found" | "timeout" | "output-too-large" | "error";
}

export type CommandRunner = (command: string, args: readonly string[]) => Promise<CommandResult>;

/** A status query answers in milliseconds; one that takes 2 s is hung (a D-Bus call that waits, a dead daemon). */
export const COMMAND_TIMEOUT_MS = 2000;
/** Every tool asked here prints a few hundred bytes; more is not the answer we asked for. */
export const MAX_COMMAND_OUTPUT_BYTES = 64 * 1024;

/**
 * The production runner: child_process.execFile (no shell), killed with SIGKILL at the timeout.
 * LC_ALL=C: timedatectl formats numbers with the locale (a German one prints "+0,000ppm"). The sbin
 * directories are added to PATH: adjtimex lives in /usr/sbin, which a user's PATH may lack.
 */
export function execFileRunner(
  timeoutMs = COMMAND_TIMEOUT_MS,
  maxOutputBytes = MAX_COMMAND_OUTPUT_BYTES,
): CommandRunner {
  const env = {
    ...process.env,
    LC_ALL: "C",
    PATH: [process.env.PATH, "/usr/sbin", "/sbin", "/usr/bin", "/bin"].filter(Boolean).join(":"),
  };
  return (command, args) =>
    new Promise((resolve) => {
      const child = execFile(
        command,
        [...args],
        { encoding: "utf8", timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: maxOutputBytes, env },
        (error, stdout, stderr) => {
          if (!error) return resolve({ code: 0, stdout, stderr });
          const e = error as NodeJS.ErrnoException & { killed?: boolean; code?: string | number };
          if (typeof e.code === "number") return resolve({ code: e.code, stdout, stderr });
          const failure =
            e.code === "ENOENT"
              ? "not-found"
              : e.code === "ERR_CHILD_PROCESS_STDIO_MAXBUFFER"
                ? "output-too-large"
                : e.killed
                  ? "timeout"
                  : "error";
          resolve({ code: null, stdout, stderr: stderr || e.message, failure });
        },
      );
      // Nothing is ever written to a status tool: an open stdin would only let one wait for input.
      child.stdin?.end();
    });
}

/** Why a run gave no usable answer, in a few words ("not installed", "no answer within 2 s", its first error line). */
export function whyNoAnswer(result: CommandResult, timeoutMs = COMMAND_TIMEOUT_MS): string {
  switch (result.failure) {
    case "not-found":
      return "not installed";
    case "timeout":
      return `no answer within ${timeoutMs / 1000} s`;
    case "output-too-large":
      return "printed more than expected (output cut)";
    default: {
      const line = `${result.stderr}\n${result.stdout}`.split("\n").find((l) => l.trim() !== "");
      const exit = result.code === null ? "failed" : `exit ${result.code}`;
      return line ? `${exit}: ${line.trim().slice(0, 200)}` : exit;
    }
  }
}
