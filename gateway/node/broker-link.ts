import { decisionFilter, inboxFilter } from "../protocol/corridor-messages.js";
import { type IntersectionTopics, PROTOCOL_VERSION } from "../protocol/topics.js";
import type { Clock } from "../shell/clock.js";
import type { Logger } from "../shell/log.js";
import { MqttSession } from "../shell/mqtt-session.js";
import type { GatewayStore } from "../store/store.js";
import { OutboxFlusher } from "./outbox-flusher.js";

export interface BrokerSettings {
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  readonly ca?: string | Buffer;
  /** A client certificate and its key (PEM), for a broker that takes them (docs/mtls.md). */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

export interface BrokerLinkHooks {
  onConnect(): void;
  onDisconnect(reason: string): void;
  onMessage(topic: string, payload: Buffer, retained: boolean): void;
}

/**
 * A gateway's connection to the broker: its session (last will, subscriptions), its availability,
 * and the outbox it flushes. Nothing is queued here while offline: the outbox is on disk, the status is
 * published again on connect, and the corridor protocol resends and asks again.
 */
export class BrokerLink {
  readonly session: MqttSession;
  readonly flusher: OutboxFlusher;

  constructor(
    settings: BrokerSettings,
    ids: { readonly corridor: string; readonly intersection: string },
    private readonly topics: IntersectionTopics,
    store: GatewayStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    hooks: BrokerLinkHooks,
  ) {
    this.session = new MqttSession(
      {
        url: settings.url,
        clientId: `greenwave-${ids.corridor}-${ids.intersection}`,
        ...(settings.username !== undefined ? { username: settings.username } : {}),
        ...(settings.password !== undefined ? { password: settings.password } : {}),
        ...(settings.ca !== undefined ? { ca: settings.ca } : {}),
        ...(settings.cert !== undefined ? { cert: settings.cert } : {}),
        ...(settings.key !== undefined ? { key: settings.key } : {}),
        will: {
          topic: topics.availability,
          payload: JSON.stringify({ v: PROTOCOL_VERSION, online: false, reason: "connection lost" }),
          retain: true,
        },
        subscriptions: [
          topics.commandFilter,
          topics.signedCommandFilter,
          inboxFilter(ids.corridor, ids.intersection),
          decisionFilter(ids.corridor),
        ],
      },
      {
        onConnect: () => {
          this.say(true, null);
          hooks.onConnect();
          this.flusher.kick();
        },
        onDisconnect: (reason) => hooks.onDisconnect(reason),
        onMessage: (topic, payload, retained) => hooks.onMessage(topic, payload, retained),
        onError: (message) => log.debug({ message }, "broker connection error"),
      },
    );
    this.flusher = new OutboxFlusher(store, this.session, (message) => log.error(message));
  }

  get connected(): boolean {
    return this.session.connected;
  }

  start(): void {
    this.session.start();
  }

  /** QoS 1 unless told otherwise; dropped (not queued) while offline. */
  publish(topic: string, payload: string, options: { qos?: 0 | 1; retain?: boolean } = {}): Promise<void> {
    if (!this.session.connected) return Promise.resolve();
    return this.session.publish(topic, payload, { qos: options.qos ?? 1, retain: options.retain ?? false });
  }

  /** Last words: what waits in the outbox if it can leave, and "offline" said plainly rather than by the will. */
  async stop(): Promise<void> {
    if (this.session.connected) {
      this.flusher.kick();
      let bound: NodeJS.Timeout | undefined;
      await Promise.race([
        this.say(false, "stopped"),
        new Promise((resolve) => {
          bound = setTimeout(resolve, 1000);
        }),
      ]);
      clearTimeout(bound); // a timer left running would keep the process alive a second past its stop
    }
    await this.session.stop();
  }

  private say(online: boolean, reason: string | null): Promise<void> {
    const payload = {
      v: PROTOCOL_VERSION,
      online,
      ...(reason ? { reason } : {}),
      at: new Date(this.clock.now().wallMs).toISOString(),
    };
    return this.session
      .publish(this.topics.availability, JSON.stringify(payload), { retain: true })
      .catch((error: Error) => this.log.debug({ error: error.message }, "could not publish availability"));
  }
}
