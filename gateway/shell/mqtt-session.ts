import type { Socket } from "node:net";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { type BackoffPolicy, backoffDelayMs, MQTT_RECONNECT_BACKOFF } from "../core/backoff.js";

export interface MqttSessionOptions {
  readonly url: string;
  readonly clientId: string;
  readonly username?: string;
  readonly password?: string;
  /** The last will, published by the broker when the connection dies without a DISCONNECT. */
  readonly will?: { readonly topic: string; readonly payload: string; readonly retain: boolean };
  /** Subscribed with QoS 1 on every connect (the session is clean). */
  readonly subscriptions: readonly string[];
  readonly backoff?: BackoffPolicy;
  readonly keepaliveS?: number;
  readonly connectTimeoutMs?: number;
  /** Nagle's algorithm off (the default): small request/reply packets leave at once. */
  readonly noDelay?: boolean;
  /** CA certificate (PEM) for an mqtts:// broker with a private CA. */
  readonly ca?: string | Buffer;
  /** A client certificate and its key (PEM), for a broker that takes them (docs/mtls.md). */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  readonly random?: () => number;
}

export interface MqttSessionHooks {
  onConnect?(): void;
  onDisconnect?(reason: string): void;
  /** `retained`: delivered from the broker's retained store (on subscribing), not live. */
  onMessage?(topic: string, payload: Buffer, retained: boolean): void;
  onError?(message: string): void;
}

/** A connection shorter than this does not count as "back": its back-off keeps growing. */
const STABLE_CONNECTION_MS = 5000;

export class NotConnectedError extends Error {
  override name = "NotConnectedError";
}

/**
 * One MQTT 3.1.1 session to the broker, kept up for as long as it runs: clean session, QoS 1, a
 * fresh mqtt.js client per attempt with our own capped, jittered back-off between attempts (mqtt.js
 * retries at a fixed period). Subscriptions are made again on every connect; the caller republishes
 * its retained state in `onConnect`.
 */
export class MqttSession {
  private client: MqttClient | null = null;
  private attempt = 0;
  private connectedAtMs: number | null = null;
  /** Connected and subscribed: the session is usable and `onConnect` has run. */
  private ready = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = true;
  /** Bumped on every new client: callbacks of an older client are ignored. */
  private generation = 0;
  readonly counters = { connects: 0, reconnects: 0, connectFailures: 0 };

  constructor(
    private readonly options: MqttSessionOptions,
    private readonly hooks: MqttSessionHooks,
  ) {}

  get connected(): boolean {
    return this.client?.connected === true && this.ready;
  }

  /** The current connection's generation: an in-flight publish of an older one is void. */
  get currentGeneration(): number {
    return this.generation;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.open();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const client = this.client;
    this.client = null;
    if (!client) return;
    await new Promise<void>((resolve) => {
      // A clean DISCONNECT: the broker discards the will. Bounded, in case the broker is gone.
      const timer = setTimeout(() => {
        client.end(true);
        resolve();
      }, 1000);
      client.end(false, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Publishes with QoS 1 (or 0); resolves on the broker's acknowledgement. */
  publish(topic: string, payload: string, options: { qos?: 0 | 1; retain?: boolean } = {}): Promise<void> {
    const client = this.client;
    if (!client || !this.connected)
      return Promise.reject(new NotConnectedError("not connected to the broker"));
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, { qos: options.qos ?? 1, retain: options.retain ?? false }, (error) =>
        error ? reject(error) : resolve(),
      );
    });
  }

  private open(): void {
    const generation = ++this.generation;
    const o = this.options;
    const clientOptions: IClientOptions = {
      protocolVersion: 4,
      clientId: o.clientId,
      clean: true,
      reconnectPeriod: 0,
      keepalive: o.keepaliveS ?? 15,
      connectTimeout: o.connectTimeoutMs ?? 5000,
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
      ...(o.ca !== undefined ? { ca: o.ca } : {}),
      ...(o.cert !== undefined ? { cert: o.cert } : {}),
      ...(o.key !== undefined ? { key: o.key } : {}),
      ...(o.will
        ? {
            will: {
              topic: o.will.topic,
              payload: Buffer.from(o.will.payload),
              qos: 1,
              retain: o.will.retain,
            },
          }
        : {}),
    };
    let client: MqttClient;
    try {
      client = mqtt.connect(o.url, clientOptions);
    } catch (error) {
      this.hooks.onError?.(`cannot connect to ${o.url}: ${(error as Error).message}`);
      this.scheduleRetry();
      return;
    }
    this.client = client;
    client.on("connect", () => {
      if (generation !== this.generation) return;
      const stream = client.stream as Partial<Socket>;
      stream.setNoDelay?.(o.noDelay ?? true);
      this.connectedAtMs = performance.now();
      this.counters.connects++;
      if (this.counters.connects > 1) this.counters.reconnects++;
      const subscriptions = Object.fromEntries(o.subscriptions.map((t) => [t, { qos: 1 as const }]));
      if (o.subscriptions.length === 0) {
        this.ready = true;
        this.hooks.onConnect?.();
        return;
      }
      client.subscribe(subscriptions, (error) => {
        if (generation !== this.generation) return;
        if (error) {
          this.hooks.onError?.(`subscribe refused by the broker: ${error.message}`);
          client.end(true);
          return;
        }
        this.ready = true;
        this.hooks.onConnect?.();
      });
    });
    client.on("message", (topic, payload, packet) => {
      if (generation === this.generation) this.hooks.onMessage?.(topic, payload, packet.retain === true);
    });
    client.on("error", (error) => {
      if (generation === this.generation) this.hooks.onError?.(`${o.url}: ${error.message}`);
    });
    client.on("close", () => {
      if (generation !== this.generation || this.stopped) return;
      const wasConnectedAt = this.connectedAtMs;
      this.connectedAtMs = null;
      this.ready = false;
      if (wasConnectedAt === null) this.counters.connectFailures++;
      else {
        if (performance.now() - wasConnectedAt >= STABLE_CONNECTION_MS) this.attempt = 0;
        this.hooks.onDisconnect?.("connection closed");
      }
      client.end(true);
      if (!this.stopped) this.scheduleRetry();
    });
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.stopped) return;
    const delay = backoffDelayMs(
      this.options.backoff ?? MQTT_RECONNECT_BACKOFF,
      this.attempt++,
      (this.options.random ?? Math.random)(),
    );
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) this.open();
    }, delay);
  }
}
