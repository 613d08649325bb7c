import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { readEnvFile, splitArgs } from "./env-file.js";
import type { ServiceEvent } from "./health-gate.js";
import { openNotifySocket, type NotifySocket } from "./notify-socket.js";
import type { InstallPaths } from "./paths.js";
import type { ServiceManager } from "./service-manager.js";

/**
 * greenwave as its own service manager, for a TRIAL of a release where no systemd runs (a bench
 * gateway, a laptop, CI): it starts `current/bin/greenwave gateway …` with the unit's arguments and
 * environment file, owns the NOTIFY_SOCKET the gateway reports to (the protocol systemd uses, so the
 * gateway cannot tell the difference), restarts it after a crash as Restart=always does, enforces the
 * unit's watchdog from READY on, and stops it with SIGTERM to its process group (TimeoutStopSec, then
 * SIGKILL). It is not a supervisor: when the activation command ends, so does the gateway it started
 * — there is no service manager to hand it to. Use it to qualify a release before it goes to the
 * field, and in the tests, where it is the real thing minus systemd.
 */

export interface DirectServiceOptions {
  /** systemd's RestartSec default. */
  readonly restartDelayMs?: number;
  /** The unit's TimeoutStopSec: a clean stop runs every clearance to all-red first. */
  readonly stopTimeoutMs?: number;
  /** The unit's WatchdogSec, from READY on; 0: none. */
  readonly watchdogMs?: number;
}

/** Output lines kept for the failure message, like the end of the journal. */
const KEPT_LINES = 30;

export class DirectService implements ServiceManager {
  readonly name = "direct";
  private child: ChildProcess | null = null;
  private socket: NotifySocket | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private watchdogTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  private readonly lines: string[] = [];
  private readonly restartDelayMs: number;
  private readonly stopTimeoutMs: number;
  private readonly watchdogMs: number;

  constructor(
    private readonly paths: InstallPaths,
    options: DirectServiceOptions = {},
  ) {
    this.restartDelayMs = options.restartDelayMs ?? 100;
    this.stopTimeoutMs = options.stopTimeoutMs ?? 60_000;
    this.watchdogMs = options.watchdogMs ?? 10_000;
  }

  shouldGate(): Promise<{ gate: boolean; why: string }> {
    return Promise.resolve({ gate: true, why: "the direct service manager runs the release on trial" });
  }

  start(observe: (event: ServiceEvent) => void): Promise<void> {
    this.stopping = false;
    this.lines.length = 0;
    this.socket = openNotifySocket((line) => this.onNotify(line, observe));
    this.spawnGateway(observe);
    return Promise.resolve();
  }

  /** ExecStart of greenwave.service, under this root. */
  private command(): { file: string; args: string[]; env: NodeJS.ProcessEnv } {
    const fromFile = readEnvFile(this.paths.envFile);
    const env: NodeJS.ProcessEnv = { ...process.env, ...fromFile, NOTIFY_SOCKET: this.socket?.path };
    delete env.WATCHDOG_PID;
    if (this.watchdogMs > 0) env.WATCHDOG_USEC = String(this.watchdogMs * 1000);
    else delete env.WATCHDOG_USEC;
    return {
      file: join(this.paths.current, "bin/greenwave"),
      args: [
        "gateway",
        "--config",
        this.paths.config,
        "--data-dir",
        this.paths.data,
        "--password-file",
        this.paths.passwordFile,
        ...splitArgs(fromFile.GREENWAVE_ARGS ?? process.env.GREENWAVE_ARGS),
      ],
      env,
    };
  }

  private spawnGateway(observe: (event: ServiceEvent) => void): void {
    const { file, args, env } = this.command();
    // Its own process group, so that a stop reaches every process of it (KillMode=control-group).
    const child = spawn(file, args, { env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    const keep = (data: Buffer) => {
      for (const line of data.toString("utf8").split("\n")) if (line.trim()) this.lines.push(line);
      this.lines.splice(0, Math.max(0, this.lines.length - KEPT_LINES));
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    let ended = false;
    const end = (how: string) => {
      if (ended) return;
      ended = true;
      this.clearWatchdog();
      if (this.child === child) this.child = null;
      if (this.stopping) return;
      observe({ kind: "exited", how });
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        if (!this.stopping) this.spawnGateway(observe);
      }, this.restartDelayMs);
    };
    child.once("error", (error) => end(`cannot be started: ${error.message}`));
    child.once("exit", (code, signal) => end(signal ? `killed by ${signal}` : `exit status ${code}`));
  }

  private onNotify(line: string, observe: (event: ServiceEvent) => void): void {
    if (this.stopping) return;
    if (line === "READY=1") {
      observe({ kind: "ready" });
      this.armWatchdog();
    } else if (line === "WATCHDOG=1") {
      if (this.watchdogTimer) this.armWatchdog();
    } else if (line.startsWith("STATUS=")) observe({ kind: "status", text: line.slice("STATUS=".length) });
  }

  /** As systemd does on a missed ping: SIGABRT, then the exit counts as a crash and it restarts. */
  private armWatchdog(): void {
    if (this.watchdogMs <= 0) return;
    this.clearWatchdog();
    const child = this.child;
    this.watchdogTimer = setTimeout(() => {
      this.lines.push(`(watchdog: no WATCHDOG=1 within ${this.watchdogMs} ms: SIGABRT)`);
      if (child?.pid) signalGroup(child.pid, "SIGABRT");
    }, this.watchdogMs);
  }

  private clearWatchdog(): void {
    if (this.watchdogTimer) clearTimeout(this.watchdogTimer);
    this.watchdogTimer = null;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.clearWatchdog();
    const child = this.child;
    if (child?.pid && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      signalGroup(child.pid, "SIGTERM");
      const kill = setTimeout(() => signalGroup(child.pid as number, "SIGKILL"), this.stopTimeoutMs);
      await exited;
      clearTimeout(kill);
    }
    this.child = null;
    this.socket?.close();
    this.socket = null;
  }

  async detach(): Promise<void> {
    await this.stop();
  }

  /** Nothing to undo: its stop only ever stops what it started itself. */
  undoStop(): Promise<void> {
    return Promise.resolve();
  }

  diagnostics(): string[] {
    return this.lines.length > 0 ? ["its last output:", ...this.lines.map((l) => `  | ${l}`)] : [];
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}
