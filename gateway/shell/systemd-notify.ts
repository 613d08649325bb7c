/**
 * systemd's notify socket (sd_notify(3)): a Unix datagram socket named by NOTIFY_SOCKET, which Node's
 * own `net` and `dgram` cannot open. `unix-dgram` (a small native addon, the one Zigbee2MQTT uses for
 * the same job) sends the datagrams; it is loaded only when NOTIFY_SOCKET is set, so a laptop or the
 * demo never needs it.
 */
import { createRequire } from "node:module";
import type { Logger } from "./log.js";

export interface ServiceNotifier {
  /** One notify message (`READY=1`, `WATCHDOG=1`, `STATUS=…`, `STOPPING=1`); never throws. */
  send(message: string): void;
  close(): void;
  /** Messages the socket refused or could not take (congestion): counted, never queued. */
  readonly dropped: number;
}

export interface SystemdEnvironment {
  /** Where to send; null: not started by systemd as Type=notify. */
  readonly socketPath: string | null;
  /** The watchdog period (WATCHDOG_USEC), when systemd keeps one for this process. */
  readonly watchdogMs: number | null;
}

/** The longest watchdog period taken as meant: past a day it is a typo, not a watchdog. */
const MAX_WATCHDOG_MS = 86_400_000;

/**
 * Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID as sd_watchdog_enabled(3) does: the watchdog is
 * this process's only when WATCHDOG_PID is unset or names it.
 */
export function systemdEnvironment(env: NodeJS.ProcessEnv, pid: number): SystemdEnvironment {
  const socketPath = env.NOTIFY_SOCKET && env.NOTIFY_SOCKET.length > 0 ? env.NOTIFY_SOCKET : null;
  const usec = Number(env.WATCHDOG_USEC);
  const forMe = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === pid;
  const watchdogMs =
    socketPath && forMe && Number.isInteger(usec) && usec > 0 && usec / 1000 <= MAX_WATCHDOG_MS
      ? usec / 1000
      : null;
  return { socketPath, watchdogMs };
}

interface UnixDgramSocket {
  on(event: "error" | "congestion", listener: (arg: unknown) => void): void;
  send(buf: Buffer, offset: number, length: number, path: string, callback?: (error?: Error) => void): void;
  close(): void;
}

/** The socket to systemd, or null (with the reason logged) when it cannot be had. */
export function openSystemdNotifier(socketPath: string, log: Logger): ServiceNotifier | null {
  if (socketPath.startsWith("@")) {
    log.warn(
      { socket: socketPath },
      "NOTIFY_SOCKET is in the abstract namespace, which unix-dgram cannot reach: no READY or watchdog pings; run the unit with a path socket (the systemd default)",
    );
    return null;
  }
  let socket: UnixDgramSocket;
  try {
    const require = createRequire(import.meta.url);
    const unixDgram = require("unix-dgram") as { createSocket(type: "unix_dgram"): UnixDgramSocket };
    socket = unixDgram.createSocket("unix_dgram");
  } catch (error) {
    log.error(
      { socket: socketPath, error: (error as Error).message },
      "cannot open systemd's notify socket (the unix-dgram addon did not load): no READY or watchdog pings; reinstall greenwave",
    );
    return null;
  }
  let dropped = 0;
  let lastError = "";
  const note = (error: unknown) => {
    dropped++;
    const message = error instanceof Error ? error.message : String(error);
    if (message !== lastError)
      log.warn({ socket: socketPath, error: message }, "systemd notify message not sent");
    lastError = message;
  };
  socket.on("error", note);
  socket.on("congestion", () => note(new Error("the notify socket is congested")));
  return {
    send(message) {
      const buf = Buffer.from(message, "utf8");
      try {
        socket.send(buf, 0, buf.length, socketPath, (error) => {
          if (error) note(error);
        });
      } catch (error) {
        note(error);
      }
    },
    close() {
      try {
        socket.close();
      } catch {
        // already closed
      }
    },
    get dropped() {
      return dropped;
    },
  };
}
