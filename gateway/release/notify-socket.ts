import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * systemd's half of sd_notify(3): a Unix datagram socket this process binds, whose path goes to the
 * service in NOTIFY_SOCKET. Each datagram holds newline-separated `KEY=VALUE` lines (`READY=1`,
 * `STATUS=…`, `WATCHDOG=1`, `STOPPING=1`). Node's own `dgram` has no Unix datagrams: `unix-dgram`
 * (the addon the gateway sends with, gateway/shell/systemd-notify.ts) binds it.
 */

interface UnixDgramSocket {
  on(event: "message", listener: (buf: Buffer) => void): void;
  on(event: "error", listener: (error: Error) => void): void;
  bind(path: string): void;
  close(): void;
}

export interface NotifySocket {
  readonly path: string;
  close(): void;
}

/** Binds a fresh socket in a private temporary directory (0700: only this user may send). */
export function openNotifySocket(onLine: (line: string) => void): NotifySocket {
  const unixDgram = createRequire(import.meta.url)("unix-dgram") as {
    createSocket(type: "unix_dgram"): UnixDgramSocket;
  };
  const dir = mkdtempSync(join(tmpdir(), "greenwave-notify-"));
  const path = join(dir, "notify");
  const socket = unixDgram.createSocket("unix_dgram");
  let bindError: Error | null = null;
  socket.on("error", (error) => {
    bindError ??= error;
  });
  socket.on("message", (buf) => {
    for (const line of buf.toString("utf8").split("\n")) if (line) onLine(line);
  });
  socket.bind(path);
  const close = () => {
    socket.close();
    rmSync(dir, { recursive: true, force: true });
  };
  if (bindError) {
    close();
    throw new Error(`cannot bind the notify socket ${path}: ${(bindError as Error).message}`);
  }
  return { path, close };
}
