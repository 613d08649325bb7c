import { takeToken, type TokenBucket } from "../core/token-bucket.js";

/**
 * Everything that arrives from the network waits here before any work is done on it, so that no
 * amount of it can starve the lamp loop, which shares this event loop (issue 12: 20,000 inquiries in
 * 1.5 s once stalled a gateway for 24 s and tripped its module's watchdog six times).
 *
 * - Admission is O(1) and happens as mqtt.js parses: a token bucket per sender (the corridor
 *   protocol's sender is a topic level the broker's ACL vouches for; commands share one bucket, their
 *   sender being only a claim in the payload), then a bounded queue per class. Past either, the
 *   message is dropped and counted: a protocol message is resent or asked for again by its sender
 *   (the protocol never relies on one delivery); a dropped command gets no reply and its operator's
 *   command times out.
 * - The work (parsing, validating, the machines, the store) runs in slices of at most
 *   `sliceBudgetMs` per event-loop turn, so the tick timer and the Modbus answers get their turn
 *   between slices.
 */

export type InboundClass = "command" | "corridor" | "decision";

export interface InboundMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly cls: InboundClass;
  /** Who sent it, as far as the topic tells: the rate limit's key. */
  readonly sender: string;
}

export type DropReason = "rate-limited" | "queue-full";

export interface InboundLimits {
  /** Messages that may wait per class. */
  readonly queueCapacity: Readonly<Record<InboundClass, number>>;
  /** Sustained messages per second per sender, and the burst above it. */
  readonly perSenderPerSecond: Readonly<Record<InboundClass, number>>;
  readonly perSenderBurst: Readonly<Record<InboundClass, number>>;
  /** Senders tracked at once; past it the least recently seen is forgotten (it starts full again). */
  readonly maxSenders: number;
  /** Work per event-loop turn before yielding. */
  readonly sliceBudgetMs: number;
}

/**
 * Far above what the protocol needs (a corridor switch sends a participant a handful of messages; a
 * coordinating gateway gets three from each participant) and far below what starves a 2-core board.
 */
export const DEFAULT_INBOUND_LIMITS: InboundLimits = {
  queueCapacity: { command: 64, corridor: 2048, decision: 512 },
  perSenderPerSecond: { command: 10, corridor: 20, decision: 50 },
  perSenderBurst: { command: 64, corridor: 100, decision: 200 },
  maxSenders: 512,
  sliceBudgetMs: 5,
};

export class InboundQueue {
  private readonly queues: Record<InboundClass, InboundMessage[]> = {
    command: [],
    corridor: [],
    decision: [],
  };
  /** Insertion order is recency order: a sender seen again is moved to the end. */
  private readonly buckets = new Map<string, TokenBucket>();
  private draining = false;
  private closed = false;
  readonly dropped = new Map<string, number>();

  constructor(
    private readonly handle: (message: InboundMessage) => void,
    private readonly onDrop: (message: InboundMessage, reason: DropReason) => void,
    private readonly nowMs: () => number,
    private readonly limits: InboundLimits = DEFAULT_INBOUND_LIMITS,
  ) {}

  get depth(): number {
    return this.queues.command.length + this.queues.corridor.length + this.queues.decision.length;
  }

  /** Admits or drops at once; never does the message's work here. */
  offer(message: InboundMessage): void {
    if (this.closed) return;
    if (!this.take(message)) return this.drop(message, "rate-limited");
    const queue = this.queues[message.cls];
    if (queue.length >= this.limits.queueCapacity[message.cls]) return this.drop(message, "queue-full");
    queue.push(message);
    this.scheduleDrain();
  }

  /** Drops what waits (a stopped gateway does no more work). */
  close(): void {
    this.closed = true;
    for (const queue of Object.values(this.queues)) queue.length = 0;
  }

  private take(message: InboundMessage): boolean {
    const key = `${message.cls}\u0000${message.sender}`;
    const known = this.buckets.get(key);
    // Re-inserted on every message: the map's order is recency, its first key the least recent.
    if (known) this.buckets.delete(key);
    else if (this.buckets.size >= this.limits.maxSenders)
      this.buckets.delete(this.buckets.keys().next().value as string);
    const { bucket, admitted } = takeToken(known, this.nowMs(), {
      ratePerSecond: this.limits.perSenderPerSecond[message.cls],
      burst: this.limits.perSenderBurst[message.cls],
    });
    this.buckets.set(key, bucket);
    return admitted;
  }

  private drop(message: InboundMessage, reason: DropReason): void {
    const key = `${message.cls}:${reason}`;
    this.dropped.set(key, (this.dropped.get(key) ?? 0) + 1);
    this.onDrop(message, reason);
  }

  private scheduleDrain(): void {
    if (this.draining) return;
    this.draining = true;
    setImmediate(() => this.drainSlice());
  }

  /**
   * One slice of work. Commands first (an operator waits for the answer), then the corridor protocol,
   * then decision records; a slice ends when its budget is spent, and the rest waits a turn.
   */
  private drainSlice(): void {
    const started = this.nowMs();
    while (!this.closed && this.nowMs() - started < this.limits.sliceBudgetMs) {
      const next =
        this.queues.command.shift() ?? this.queues.corridor.shift() ?? this.queues.decision.shift();
      if (!next) break;
      this.handle(next);
    }
    this.draining = false;
    if (!this.closed && this.depth > 0) this.scheduleDrain();
  }
}
