import { freePort } from "../../fixtures/ports.js";
/**
 * Starts SUMO as a TraCI server on a free loopback port and connects to it; stop() makes sure the
 * process is gone. SUMO's stderr is kept (its last 64 KiB) so that every error says what SUMO said.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { TraciClient } from "./client.js";
import { TraciError } from "./errors.js";

export interface SumoProcess {
  readonly client: TraciClient;
  readonly process: ChildProcess;
  /** The last 64 KiB of SUMO's stderr. */
  stderr(): string;
  /** Closes the client (SUMO then ends on its own), then SIGTERM, then SIGKILL: the process is gone when it resolves. Idempotent. */
  stop(): Promise<void>;
}

export interface StartSumoOptions {
  binary?: "sumo" | "sumo-gui";
  /** SUMO's arguments (-n, -r, --step-length, …); --remote-port is added here. */
  args: readonly string[];
  cwd?: string;
  /** How long SUMO may take to load and accept the connection (ms, default 20 000). */
  connectWithinMs?: number;
  /** Per-command timeout of the client (ms, default 10 000). */
  timeoutMs?: number;
  /** SUMO's environment (default: this process's, with SUMO_HOME set to Debian's /usr/share/sumo when unset and present). */
  env?: NodeJS.ProcessEnv;
}

const STDERR_KEEP_BYTES = 64 * 1024;
const DEFAULT_CONNECT_WITHIN_MS = 20_000;
/** After the close command SUMO writes its outputs and exits; a SIGTERM comes after this long. */
const EXIT_AFTER_CLOSE_MS = 5_000;
const EXIT_AFTER_TERM_MS = 2_000;
const EXIT_AFTER_KILL_MS = 2_000;
/** A port taken between choosing it and SUMO binding it: try another one, this many times in all. */
const PORT_ATTEMPTS = 3;

/** Keeps the last `limit` bytes written to it. */
class Tail {
  private chunks: Buffer[] = [];
  private bytes = 0;
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.bytes > this.limit && this.chunks.length > 1)
      this.bytes -= (this.chunks.shift() as Buffer).length;
    if (this.bytes > this.limit) {
      this.chunks = [(this.chunks[0] as Buffer).subarray(this.bytes - this.limit)];
      this.bytes = this.limit;
    }
  }
  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

/** How a process ended, or that it still runs. */
function exitOf(child: ChildProcess): string | null {
  if (child.exitCode !== null) return `exit code ${child.exitCode}`;
  if (child.signalCode !== null) return `signal ${child.signalCode}`;
  return null;
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exitOf(child) !== null || child.pid === undefined) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off("exit", onExit);
      resolve(false);
    }, ms);
    function onExit(): void {
      clearTimeout(timer);
      resolve(true);
    }
    child.once("exit", onExit);
  });
}

/** Spawns sumo (or sumo-gui) with --remote-port on a free loopback port and connects. */
export async function startSumo(options: StartSumoOptions): Promise<SumoProcess> {
  const binary = options.binary ?? "sumo";
  let lastError: TraciError | null = null;
  for (let attempt = 1; attempt <= PORT_ATTEMPTS; attempt++) {
    const port = await freePort();
    const child = spawn(binary, ["--remote-port", String(port), ...options.args], {
      cwd: options.cwd,
      env: options.env ?? sumoEnvironment(),
      stdio: ["ignore", "ignore", "pipe"],
    });
    const tail = new Tail(STDERR_KEEP_BYTES);
    child.stderr?.on("data", (chunk: Buffer) => tail.push(chunk));
    let spawnError: Error | null = null;
    const gone = new AbortController();
    child.once("error", (e) => {
      spawnError = e;
      gone.abort();
    });
    child.once("exit", () => gone.abort());
    const describe = (): string => {
      const exit = exitOf(child);
      const ended =
        spawnError !== null
          ? `cannot run ${binary}: ${spawnError.message}`
          : exit === null
            ? ""
            : `${binary} ended (${exit})`;
      const said = tail.text().trim();
      return [ended, said === "" ? "" : `${binary} said: ${lastLines(said)}`]
        .filter((s) => s !== "")
        .join("; ");
    };
    const stop = stopper(child);
    try {
      const client = await TraciClient.connect(port, {
        host: "127.0.0.1",
        connectWithinMs: options.connectWithinMs ?? DEFAULT_CONNECT_WITHIN_MS,
        signal: gone.signal,
        describePeer: describe,
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      });
      // SUMO 1.15 listens before it loads its inputs: a refused network shows as the connection
      // closing on the first command. Ask its version, so that startSumo fails rather than the caller's
      // first step; and wait for the exit, so that the error says what SUMO said.
      try {
        await client.getVersion();
      } catch (e) {
        await client.close();
        await waitExit(child, EXIT_AFTER_TERM_MS);
        throw new TraciError(
          `${binary} did not start: ${describe() || (e as Error).message}`,
          { kind: "connection", command: "connect" },
          { cause: e },
        );
      }
      let stopping: Promise<void> | null = null;
      return {
        client,
        process: child,
        stderr: () => tail.text(),
        stop: () =>
          (stopping ??= (async () => {
            await client.close();
            await stop(EXIT_AFTER_CLOSE_MS);
          })()),
      };
    } catch (e) {
      await stop(0);
      lastError =
        e instanceof TraciError
          ? e
          : new TraciError(`cannot start ${binary}: ${(e as Error).message}`, {
              kind: "connection",
              command: "connect",
            });
      // Another program took the port before SUMO bound it: try another port. Anything else is final.
      if (!/address already in use|bind/i.test(tail.text())) throw lastError;
    }
  }
  throw lastError as TraciError;
}

/** Waits `graceMs` for the process to exit, then SIGTERM, then SIGKILL; resolves once it is gone (bounded). */
function stopper(child: ChildProcess): (graceMs: number) => Promise<void> {
  return async (graceMs) => {
    if (await waitExit(child, graceMs)) return;
    child.kill("SIGTERM");
    if (await waitExit(child, EXIT_AFTER_TERM_MS)) return;
    child.kill("SIGKILL");
    await waitExit(child, EXIT_AFTER_KILL_MS);
  };
}

/** The last few lines of SUMO's output, for an error message (the whole tail stays in stderr()). */
function lastLines(text: string, lines = 8): string {
  return text.split("\n").slice(-lines).join(" | ");
}

/**
 * SUMO warns without SUMO_HOME and then validates its XML inputs against schemas fetched from the web
 * (slow, or failing offline); Debian's package keeps them under /usr/share/sumo.
 */
export function sumoEnvironment(): NodeJS.ProcessEnv {
  if (process.env.SUMO_HOME !== undefined || !existsSync(DEBIAN_SUMO_HOME)) return process.env;
  return { ...process.env, SUMO_HOME: DEBIAN_SUMO_HOME };
}
const DEBIAN_SUMO_HOME = "/usr/share/sumo";
