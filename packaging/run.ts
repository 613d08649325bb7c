import { spawnSync } from "node:child_process";
import { PackagingError } from "./errors.js";

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** What the step is, for the error message ("npm ci of the production dependencies"). */
  readonly what: string;
  /** Which Debian package provides the command, for the message when it is missing. */
  readonly install?: string;
  /** Keep the output (returned, and shown only if the command fails) instead of passing it through. */
  readonly capture?: boolean;
}

/** Lines of a failed command's output that go into the error: the compiler's error is near the end. */
const TAIL_LINES = 40;

/**
 * Runs a build step to its end. A missing command or a failure is a PackagingError naming the step,
 * the command line, the directory and the end of its output.
 */
export function run(command: string, args: readonly string[], options: RunOptions): string {
  const result = spawnSync(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    encoding: "utf8",
    stdio: options.capture ? ["ignore", "pipe", "pipe"] : ["ignore", "inherit", "inherit"],
    maxBuffer: 256 * 1024 * 1024,
  });
  const line = [command, ...args].join(" ");
  if (result.error) {
    if ((result.error as NodeJS.ErrnoException).code === "ENOENT")
      throw new PackagingError(
        `${options.what}: ${command} is not installed${options.install ? ` (apt-get install ${options.install})` : ""}`,
      );
    throw new PackagingError(`${options.what}: cannot run ${line}: ${result.error.message}`);
  }
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`;
  if (result.status !== 0) {
    const how = result.status === null ? `killed by ${result.signal}` : `exit ${result.status}`;
    const tail = output.trimEnd().split("\n").slice(-TAIL_LINES).join("\n");
    throw new PackagingError(
      `${options.what} failed (${how}): ${line}${options.cwd ? ` in ${options.cwd}` : ""}${tail ? `\n${tail}` : ""}`,
    );
  }
  return result.stdout ?? "";
}

/** Whether a command is on the PATH. */
export function hasCommand(command: string): boolean {
  return spawnSync("sh", ["-c", 'command -v "$1"', "sh", command], { stdio: "ignore" }).status === 0;
}
