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
            inFlight.delete(message.seq);
            this.sent++;
            try {
              this.store.delivered(message.seq);
            } catch (error) {
              this.onError(
                `outbox: cannot mark message ${message.seq} delivered: ${(error as Error).message}`,
              );
            }
            this.kick();
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
