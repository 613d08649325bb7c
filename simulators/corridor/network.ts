import type { CorridorBody } from "../../gateway/protocol/corridor-messages.js";
import type { EventQueue } from "./event-queue.js";
import type { SeededRandom } from "./random.js";

/** How hostile the network is in one run (chosen from the seed). */
export interface NetworkFaults {
  readonly lossRate: number;
  readonly duplicateRate: number;
  /** Messages held back for seconds: what reorders them. */
  readonly longDelayRate: number;
  readonly minLatencyMs: number;
  readonly maxLatencyMs: number;
}

export interface SimEnvelope {
  readonly from: string;
  readonly to: string;
  readonly sentAtWallMs: number;
  readonly body: CorridorBody;
}

/**
 * A decision record, retained by the broker (in memory: a broker restart loses it) under the branch of
 * whoever published it (`publishedBy`, which the ACL vouches for): a coordinator's own, or a forged copy.
 */
export interface RetainedDecision {
  readonly txnId: string;
  readonly publishedBy: string;
  /** The coordinator the record names (a forger may name anyone). */
  readonly coordinator: string;
  readonly outcome: "committed" | "aborted";
  readonly signature?: string;
}

export interface NetworkStats {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  lostToBroker: number;
}

/**
 * The broker and the network between the parties: per-message latency, loss, duplication and long
 * delays; partitions that cut one party off; broker restarts that lose every message in flight, every
 * queued message and every retained record.
 */
export class SimNetwork {
  faults: NetworkFaults;
  /** Parties cut off until the given true time. */
  private readonly cutUntil = new Map<string, number>();
  private brokerDownUntil = -1;
  private brokerEpoch = 0;
  readonly retained = new Map<string, RetainedDecision>();
  readonly stats: NetworkStats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, lostToBroker: 0 };

  constructor(
    private readonly queue: EventQueue,
    private readonly random: SeededRandom,
    faults: NetworkFaults,
    private readonly now: () => number,
    private readonly deliver: (envelope: SimEnvelope) => void,
    private readonly trace: (line: string) => void,
  ) {
    this.faults = faults;
  }

  private reachable(party: string, t: number): boolean {
    return (this.cutUntil.get(party) ?? -1) <= t;
  }

  private up(t: number): boolean {
    return t >= this.brokerDownUntil;
  }

  send(envelope: SimEnvelope): void {
    const t = this.now();
    this.stats.sent++;
    if (!this.up(t) || !this.reachable(envelope.from, t) || !this.reachable(envelope.to, t)) {
      this.stats.lostToBroker++;
      return;
    }
    if (this.random.chance(this.faults.lossRate)) {
      this.stats.lost++;
      this.trace(`lost ${describeEnvelope(envelope)}`);
      return;
    }
    const copies = this.random.chance(this.faults.duplicateRate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      const latency = this.random.chance(this.faults.longDelayRate)
        ? this.random.int(1000, 20_000)
        : this.random.int(this.faults.minLatencyMs, this.faults.maxLatencyMs);
      const epoch = this.brokerEpoch;
      this.queue.at(t + latency, () => {
        const at = this.now();
        // The broker keeps QoS 1 messages in memory only; a cut-off party never gets them.
        if (epoch !== this.brokerEpoch || !this.reachable(envelope.to, at)) {
          this.stats.lostToBroker++;
          return;
        }
        this.stats.delivered++;
        this.deliver(envelope);
      });
    }
  }

  /** Would a message from `from` to `to` pass the broker now (it is up and neither end is cut off)? */
  passes(from: string, to: string): boolean {
    const t = this.now();
    return this.up(t) && this.reachable(from, t) && this.reachable(to, t);
  }

  partition(party: string, untilTrueMs: number): void {
    this.cutUntil.set(party, Math.max(untilTrueMs, this.cutUntil.get(party) ?? -1));
  }

  restartBroker(downForMs: number): void {
    this.brokerEpoch++;
    this.brokerDownUntil = this.now() + downForMs;
    this.retained.clear();
  }

  /** One record per (publisher, transaction), as on a broker: topic `<publisher>/decisions/<txn>`. */
  retain(record: RetainedDecision): void {
    if (this.up(this.now())) this.retained.set(`${record.publishedBy}/${record.txnId}`, record);
  }

  /** The records of a transaction a party reading them sees now (none while the broker is down). */
  retainedFor(txnId: string, reader: string): RetainedDecision[] {
    const t = this.now();
    if (!this.up(t) || !this.reachable(reader, t)) return [];
    return [...this.retained.values()].filter((r) => r.txnId === txnId);
  }

  heal(): void {
    this.cutUntil.clear();
    this.brokerDownUntil = Math.min(this.brokerDownUntil, this.now());
    this.faults = { ...this.faults, lossRate: 0, duplicateRate: 0, longDelayRate: 0 };
  }
}

export function describeEnvelope(e: SimEnvelope): string {
  const b = e.body;
  const detail =
    b.type === "lease"
      ? `${b.reply.type}${"token" in b.reply ? ` #${b.reply.token}` : ""}`
      : b.type === "prepare"
        ? `${b.txnId} #${b.token} ${b.plan.id} at ${b.activationWallMs}`
        : b.type === "decision"
          ? `${b.txnId} ${b.outcome} #${b.token}`
          : b.type === "vote"
            ? `${b.txnId} ${b.yes ? "yes" : `no (${b.reason})`}`
            : b.type === "ack"
              ? `${b.txnId} ${b.outcome}`
              : b.type === "answer"
                ? `${b.txnId} ${b.answer}`
                : b.type === "inquiry"
                  ? b.txnId
                  : "token" in b
                    ? `#${b.token}`
                    : "";
  return `${e.from}->${e.to} ${b.type} ${detail}`;
}
