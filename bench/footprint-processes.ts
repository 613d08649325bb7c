import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { resolve } from "node:path";

/**
 * greenwave commands started as a user starts them (`node dist/gateway/cli/main.js …`), with their
 * output kept: JSON log lines parsed, and the bytes counted (journald's input on a gateway).
 */

const CLI = resolve("dist/gateway/cli/main.js");

export interface CliProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Date.now() just before the spawn. */
  readonly spawnedAtMs: number;
  readonly lines: Record<string, unknown>[];
  /** Bytes written to stdout and stderr so far. */
  outputBytes: number;
  text: string;
}

/** Output kept for error messages, at most (a gateway's log over ten minutes is larger). */
const MAX_TEXT = 64 * 1024;
/** Parsed log lines kept, at most: the first ones (start-up) are those the bench looks for. */
const MAX_LINES = 2000;

export function startCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  const spawnedAtMs = Date.now();
  const child = spawn("node", [CLI, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  if (child.pid === undefined) throw new Error(`could not start greenwave ${args.join(" ")}`);
  const proc: CliProcess = { child, pid: child.pid, spawnedAtMs, lines: [], outputBytes: 0, text: "" };
  let partial = "";
  const take = (d: Buffer) => {
    proc.outputBytes += d.length;
    const text = d.toString();
    if (proc.text.length < MAX_TEXT) proc.text += text;
    const parts = (partial + text).split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) {
      if (!line.startsWith("{") || proc.lines.length >= MAX_LINES) continue;
      try {
        proc.lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a JSON line: it stays in `text`
      }
    }
  };
  child.stdout?.on("data", take);
  child.stderr?.on("data", take);
  return proc;
}

/** Waits for the first log line `probe` accepts; fails with the process's output if it exits first. */
export async function untilLine(
  proc: CliProcess,
  what: string,
  ms: number,
  probe: (line: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const line = proc.lines.find(probe);
    if (line) return line;
    if (proc.child.exitCode !== null || proc.child.signalCode !== null)
      throw new Error(
        `${what}: the process exited (${proc.child.exitCode ?? proc.child.signalCode}):\n${proc.text}`,
      );
    if (Date.now() > deadline) throw new Error(`${what}: nothing after ${ms} ms:\n${proc.text}`);
    await sleep(20);
  }
}

/**
 * Stops a command: SIGTERM (a gateway runs its clearances), a second one shortly after (cut short: the
 * bench does not need the all-red), SIGKILL if it has not exited within 10 s.
 */
export async function stopCli(proc: CliProcess): Promise<void> {
  const { child } = proc;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  child.kill("SIGTERM");
  const again = setTimeout(() => child.kill("SIGTERM"), 300);
  const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(again);
  clearTimeout(kill);
}

interface UnixDgramSocket {
  on(event: "message", listener: (buf: Buffer) => void): void;
  on(event: "error", listener: (error: Error) => void): void;
  bind(path: string): void;
  close(): void;
}

/**
 * systemd's side of the notify protocol, as the installed unit runs the gateway (Type=notify,
 * WatchdogSec): a datagram socket that keeps the time of the first READY=1 and counts the messages.
 */
export function ownNotifySocket(path: string): {
  readyAtMs: () => number | null;
  messages: () => number;
  close(): void;
} {
  const unixDgram = createRequire(import.meta.url)("unix-dgram") as {
    createSocket(type: "unix_dgram"): UnixDgramSocket;
  };
  let readyAtMs: number | null = null;
  let messages = 0;
  const socket = unixDgram.createSocket("unix_dgram");
  socket.on("message", (buf) => {
    for (const message of buf.toString("utf8").split("\n")) {
      if (!message) continue;
      messages++;
      if (message === "READY=1" && readyAtMs === null) readyAtMs = Date.now();
    }
  });
  socket.on("error", (error) => process.stderr.write(`notify socket: ${error.message}\n`));
  socket.bind(path);
  return { readyAtMs: () => readyAtMs, messages: () => messages, close: () => socket.close() };
}

export const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
