import { EventEmitter } from "node:events";
import {
  type AnswerVerdict,
  checkAnswer,
  decodeRequest,
  type Framing,
  type SentRequest,
  standInException,
} from "./answer-check.js";

/**
 * Sits between a link's wire and the jsmodbus clients on it. Every jsmodbus client gets a
 * GuardedPort instead of the socket or serial port: its requests go to the wire through the guard,
 * and it receives only answers the guard has checked against the request in flight (answer-check.ts).
 * An answer that fails a check never reaches jsmodbus: the guard ends the request with a stand-in
 * exception and records the real cause, which the module client reports ("invalid-answer", "crc").
 * Bytes outside an exchange (the tail of a late answer) are dropped and counted.
 */

/** The exception code of the stand-in answer; never reported as such (the recorded cause is). */
const STAND_IN_EXCEPTION_CODE = 0x04;
/** TCP: transaction ids of this many earlier requests count as late answers, not garbage. */
const REMEMBERED_REQUESTS = 16;

export type Refusal = { readonly failure: "invalid-answer" | "crc"; readonly detail: string };

/** One request and what came back for it. */
export class Exchange {
  request: SentRequest | null = null;
  received: Buffer = Buffer.alloc(0);
  /** Set once the answer was delivered or refused: later bytes are not this exchange's. */
  settled = false;
  /** Why the guard refused the answer, or null. */
  refusal: Refusal | null = null;

  constructor(readonly port: GuardedPort) {}

  /** Bytes that arrived for this request without forming an answer (told with a timeout). */
  get unanswered(): Buffer {
    return this.settled ? Buffer.alloc(0) : this.received;
  }
}

/** What a jsmodbus client takes for its socket or serial port. */
export class GuardedPort extends EventEmitter {
  constructor(private readonly guard: AnswerGuard) {
    super();
  }

  /** jsmodbus's RTU client reads this once, at construction. */
  get isOpen(): boolean {
    return this.guard.wire.isOpen();
  }

  write(frame: Buffer, done?: (error?: Error | null) => void): boolean {
    this.guard.send(this, frame, done);
    return true;
  }
}

export interface Wire {
  isOpen(): boolean;
  write(frame: Buffer, done?: (error?: Error | null) => void): void;
}

export class AnswerGuard {
  readonly counters = {
    /** TCP answers to earlier requests (after their timeout), skipped. */
    lateAnswers: 0,
    /** Bytes that arrived with no request in flight, dropped. */
    strayBytes: 0,
  };
  private pending: Exchange | null = null;
  private readonly ports = new Set<GuardedPort>();
  private readonly sent: string[] = [];

  constructor(
    readonly framing: Framing,
    readonly wire: Wire,
  ) {}

  /** A port for one more jsmodbus client; told at once when the wire is already open. */
  port(): GuardedPort {
    const port = new GuardedPort(this);
    this.ports.add(port);
    return port;
  }

  /** After the jsmodbus client has subscribed to its port: tells it the wire is open, if it is. */
  announce(port: GuardedPort): void {
    if (this.wire.isOpen()) port.emit(this.framing === "tcp" ? "connect" : "open");
  }

  opened(): void {
    for (const port of this.ports) port.emit(this.framing === "tcp" ? "connect" : "open");
  }

  closed(): void {
    for (const port of this.ports) port.emit("close");
  }

  /** Starts an exchange: the next request `port` sends, and the bytes that answer it. */
  begin(port: GuardedPort): Exchange {
    this.pending = new Exchange(port);
    return this.pending;
  }

  end(exchange: Exchange): void {
    if (this.pending === exchange) this.pending = null;
  }

  send(port: GuardedPort, frame: Buffer, done?: (error?: Error | null) => void): void {
    const exchange = this.pending;
    if (exchange && exchange.port === port && !exchange.request) {
      exchange.request = decodeRequest(this.framing, frame);
      this.remember(exchange.request);
    }
    this.wire.write(frame, done);
  }

  receive(bytes: Buffer): void {
    const exchange = this.pending;
    if (!exchange?.request || exchange.settled) {
      this.counters.strayBytes += bytes.length;
      return;
    }
    exchange.received = Buffer.concat([exchange.received, bytes]);
    this.decide(exchange, exchange.request);
  }

  private decide(exchange: Exchange, request: SentRequest): void {
    for (;;) {
      const verdict: AnswerVerdict = checkAnswer(request, exchange.received, (unit, id) =>
        this.sent.includes(`${unit}:${id}`),
      );
      switch (verdict.kind) {
        case "incomplete":
          return;
        case "late":
          this.counters.lateAnswers++;
          exchange.received = exchange.received.subarray(verdict.length);
          continue;
        case "valid":
          exchange.settled = true;
          this.counters.strayBytes += exchange.received.length - verdict.length;
          exchange.port.emit("data", exchange.received.subarray(0, verdict.length));
          return;
        case "crc":
          return this.refuse(exchange, request, {
            failure: "crc",
            detail: "answer failed its CRC check (line noise, wrong baud rate or parity?)",
          });
        case "invalid":
          return this.refuse(exchange, request, { failure: "invalid-answer", detail: verdict.reason });
      }
    }
  }

  private refuse(exchange: Exchange, request: SentRequest, refusal: Refusal): void {
    exchange.refusal = refusal;
    exchange.settled = true;
    exchange.port.emit("data", standInException(request, STAND_IN_EXCEPTION_CODE));
  }

  private remember(request: SentRequest): void {
    if (request.transactionId === null) return;
    this.sent.push(`${request.unitId}:${request.transactionId}`);
    if (this.sent.length > REMEMBERED_REQUESTS) this.sent.shift();
  }
}
