import { Socket } from "node:net";
import Modbus from "jsmodbus";
import { SerialPort } from "serialport";
import type { Link } from "../io-map.js";
import { AnswerGuard, type GuardedPort } from "./answer-guard.js";
import { explainOpenError } from "./link-errors.js";
import { RequestQueue } from "./request-queue.js";

/** Requests that may wait for one bus; more means the bus cannot keep up, and is refused and counted. */
export const MAX_QUEUED_REQUESTS = 32;
/** Reconnect / reopen back-off: doubles from the first value up to the cap. */
const REOPEN_FIRST_MS = 200;
const REOPEN_CAP_MS = 5_000;

export type UnitClient =
  InstanceType<typeof Modbus.ModbusTCPClient> | InstanceType<typeof Modbus.ModbusRTUClient>;

/** One unit's jsmodbus client, and the guarded port it talks through. */
export interface UnitChannel {
  readonly client: UnitClient;
  readonly port: GuardedPort;
}

/**
 * A physical Modbus link: one TCP connection or one serial port, shared by every module on it through
 * one request queue. The link stays open across timeouts: only a link that is gone (connection closed,
 * serial adapter unplugged) is reopened, with capped exponential back-off.
 */
export interface BusLink {
  readonly description: string;
  readonly queue: RequestQueue;
  /** Checks every answer before a jsmodbus client sees it (answer-guard.ts). */
  readonly guard: AnswerGuard;
  /** After a failed exchange, wait this long before the next one, so stale bytes of a late answer drain. */
  readonly recoveryMs: number;
  readonly isOpen: boolean;
  readonly reopens: number;
  /** Why the link is down, for "link is down" errors: the last open's failure, said so one can act on it. */
  readonly downReason: string;
  unit(unitId: number, timeoutMs: number): UnitChannel;
  /** Opens the link; when that fails it keeps trying in the background, and the error is returned. */
  open(): Promise<void>;
  close(): Promise<void>;
}

export function describeLink(link: Link): string {
  if (link.kind === "tcp") return `tcp ${link.host}:${link.port}`;
  const s = link.serial;
  return `serial ${link.path} ${s.baudRate} ${s.dataBits}${s.parity[0]?.toUpperCase()}${s.stopBits}`;
}

export function openLink(link: Link): BusLink {
  return link.kind === "tcp" ? new TcpLink(link.host, link.port) : new SerialLink(link);
}

abstract class ReopeningLink {
  protected closing = false;
  protected backoffMs = REOPEN_FIRST_MS;
  private timer: NodeJS.Timeout | null = null;
  reopens = 0;
  readonly queue = new RequestQueue(MAX_QUEUED_REQUESTS);
  abstract readonly description: string;
  private lastOpenError: unknown = null;

  protected abstract connect(): Promise<void>;

  get downReason(): string {
    return this.lastOpenError === null
      ? `${this.description}: link is down (closed by the other end; reopening)`
      : explainOpenError(this.lastOpenError, this.description);
  }

  /** Opens the link; when that fails it keeps trying in the background, and the error is returned. */
  open(): Promise<void> {
    this.closing = false;
    return this.attempt().catch((error: unknown) => {
      this.scheduleReopen();
      throw error;
    });
  }

  private attempt(): Promise<void> {
    return this.connect().then(
      () => {
        this.backoffMs = REOPEN_FIRST_MS;
        this.lastOpenError = null;
      },
      (error: unknown) => {
        this.lastOpenError = error;
        throw error;
      },
    );
  }

  protected scheduleReopen(): void {
    if (this.closing || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.reopens++;
      this.attempt().then(
        () => {},
        () => {
          this.backoffMs = Math.min(this.backoffMs * 2, REOPEN_CAP_MS);
          this.scheduleReopen();
        },
      );
    }, this.backoffMs);
  }

  protected stopReopening(): void {
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

class TcpLink extends ReopeningLink implements BusLink {
  readonly description: string;
  readonly recoveryMs = 0;
  private readonly socket = new Socket();
  private connected = false;
  readonly guard = new AnswerGuard("tcp", {
    isOpen: () => this.connected,
    write: (frame, done) => this.socket.write(frame, done),
  });

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {
    super();
    this.description = `tcp ${host}:${port}`;
    this.socket.on("connect", () => {
      this.connected = true;
      // Nagle's algorithm would hold small request frames back for tens of milliseconds.
      this.socket.setNoDelay(true);
      this.guard.opened();
    });
    this.socket.on("data", (bytes: Buffer) => this.guard.receive(bytes));
    this.socket.on("close", () => {
      this.connected = false;
      this.guard.closed();
      this.scheduleReopen();
    });
    this.socket.on("error", () => {
      // "close" follows every error; reconnecting is handled there.
    });
  }

  get isOpen(): boolean {
    return this.connected;
  }

  unit(unitId: number, timeoutMs: number): UnitChannel {
    const port = this.guard.port();
    // jsmodbus only needs a socket's events and write(); the guarded port gives it checked answers.
    const client = new Modbus.client.TCP(port as unknown as Socket, unitId, timeoutMs);
    this.guard.announce(port);
    return { client, port };
  }

  protected connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onConnect = () => {
        this.socket.off("error", onError);
        resolve();
      };
      const onError = (error: Error) => {
        this.socket.off("connect", onConnect);
        reject(error);
      };
      this.socket.once("connect", onConnect);
      this.socket.once("error", onError);
      this.socket.connect({ host: this.host, port: this.port });
    });
  }

  close(): Promise<void> {
    this.stopReopening();
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once("close", () => resolve());
      this.socket.destroy();
    });
  }
}

class SerialLink extends ReopeningLink implements BusLink {
  readonly description: string;
  readonly recoveryMs: number;
  private readonly port: SerialPort;
  readonly guard: AnswerGuard;

  constructor(link: Extract<Link, { kind: "serial" }>) {
    super();
    this.description = describeLink(link);
    const s = link.serial;
    // A late answer can take a whole frame to arrive: wait out 256 characters of silence at this baud rate.
    this.recoveryMs = Math.ceil((256 * 11 * 1000) / s.baudRate);
    this.port = new SerialPort({
      path: link.path,
      baudRate: s.baudRate,
      dataBits: s.dataBits,
      parity: s.parity,
      stopBits: s.stopBits,
      autoOpen: false,
    });
    this.guard = new AnswerGuard("rtu", {
      isOpen: () => this.port.isOpen,
      write: (frame, done) => this.port.write(frame, done),
    });
    this.port.on("open", () => this.guard.opened());
    this.port.on("data", (bytes: Buffer) => this.guard.receive(bytes));
    this.port.on("close", (error?: { disconnected?: boolean }) => {
      // Only a vanished device closes the port on its own; reopen it when it comes back.
      if (error?.disconnected) this.scheduleReopen();
    });
    this.port.on("error", () => {
      // Surfaced through the requests that fail; the port stays open across timeouts.
    });
  }

  get isOpen(): boolean {
    return this.port.isOpen;
  }

  unit(unitId: number, timeoutMs: number): UnitChannel {
    const port = this.guard.port();
    // jsmodbus only needs a port's events, isOpen and write(); the guarded port gives it checked answers.
    const client = new Modbus.client.RTU(port as unknown as SerialPort, unitId, timeoutMs);
    this.guard.announce(port);
    return { client, port };
  }

  protected connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.port.isOpen) return resolve();
      this.port.open((error) => (error ? reject(error) : resolve()));
    });
  }

  close(): Promise<void> {
    this.stopReopening();
    return new Promise((resolve) => {
      if (!this.port.isOpen) return resolve();
      this.port.close(() => resolve());
    });
  }
}
