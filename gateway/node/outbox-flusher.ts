import type { MqttSession } from "../shell/mqtt-session.js";
import type { GatewayStore } from "../store/store.js";

/** Messages published and not yet acknowledged, at most. */
export const OUTBOX_WINDOW = 16;

/**
 * Sends the store's outbox to the broker in order, QoS 1, a bounded window at a time; a message
 * leaves the outbox only when the broker acknowledged it. After a reconnect everything still in the
 * outbox is sent again from the oldest: a receiver may see a message twice (as QoS 1 allows) and
 * drops the duplicate by its sequence number, but never misses one.
 */
export class OutboxFlusher {
  private inFlight = new Set<number>();
  private generation = -1;
  private flushing = false;
  sent = 0;

  constructor(
    private readonly store: GatewayStore,
    private readonly session: MqttSession,
    private readonly onError: (message: string) => void,
  ) {}

  /**
   * Acknowledged by the broker, struck from the outbox together at the end of the turn (one
   * transaction); they count as in flight until then, so that no kick sends them again.
   */
  private acknowledged: number[] = [];

  private markDelivered(): void {
    const seqs = this.acknowledged.splice(0);
    for (const seq of seqs) this.inFlight.delete(seq);
    try {
      this.store.delivered(seqs);
    } catch (error) {
      this.onError(`outbox: cannot mark messages ${seqs.join(", ")} delivered: ${(error as Error).message}`);
    }
    this.kick();
  }

  /** Call after the store queued a message and after every (re)connect. */
  kick(): void {
    if (this.flushing || !this.session.connected) return;
    this.flushing = true;
    try {
      const generation = this.session.currentGeneration;
      if (generation !== this.generation) {
        this.generation = generation;
        this.inFlight = new Set();
      }
      const room = OUTBOX_WINDOW - this.inFlight.size;
      if (room <= 0) return;
      const waiting = this.store.outbox(OUTBOX_WINDOW).filter((m) => !this.inFlight.has(m.seq));
      for (const message of waiting.slice(0, room)) {
        this.inFlight.add(message.seq);
        const inFlight = this.inFlight;
        this.session.publish(message.topic, message.payload, { qos: 1 }).then(
          () => {
            this.sent++;
            this.acknowledged.push(message.seq);
            if (this.acknowledged.length === 1) setImmediate(() => this.markDelivered());
          },
          () => {
            // Not acknowledged: it stays in the outbox and goes again on the next connect.
            inFlight.delete(message.seq);
          },
        );
      }
    } finally {
      this.flushing = false;
    }
  }
}
