import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import mqtt, { type MqttClient } from "mqtt";
import type { Reply } from "../protocol/messages.js";
import { type CommandName, intersectionTopics, PROTOCOL_VERSION, TOPIC_ROOT } from "../protocol/topics.js";
import { type IntersectionView, ViewMap } from "./view-map.js";

export type { IntersectionView } from "./view-map.js";

export interface OperatorConnection {
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  readonly ca?: string | Buffer;
  /** A client certificate and its key (PEM), for a broker that takes them (docs/mtls.md). */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  readonly timeoutMs?: number;
}

export class OperatorError extends Error {
  override name = "OperatorError";
}

export interface StatusFollower {
  /** The latest availability and status of each intersection heard of so far. */
  views(): IntersectionView[];
  readonly lost: Promise<void>;
  stop(): void;
}

/** The operator's side of the protocol: read the retained state of a corridor, send commands. */
export class OperatorClient {
  /**
   * Reply topics subscribed to, kept for the client's life (one per intersection addressed): an
   * UNSUBSCRIBE after one command raced the SUBSCRIBE of the next on the broker, which then dropped the
   * next reply (found by `greenwave audit`, which sends its pages back to back). Replies are matched by id.
   */
  private readonly replyTopics = new Set<string>();

  private constructor(
    private readonly client: MqttClient,
    private readonly timeoutMs: number,
    /** The broker it is connected to. */
    readonly url: string,
    /**
     * Its broker login: commands go under it (`…/cmd/NAME/@alice`), the identity the gateway records;
     * null without one (an open broker), where the commands' `by` is all a gateway knows.
     */
    readonly login: string | null = null,
  ) {}

  static async connect(connection: OperatorConnection): Promise<OperatorClient> {
    const timeoutMs = connection.timeoutMs ?? 5000;
    const client = mqtt.connect(connection.url, {
      protocolVersion: 4,
      clientId: `greenwave-operator-${randomUUID().slice(0, 8)}`,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: timeoutMs,
      ...(connection.username !== undefined ? { username: connection.username } : {}),
      ...(connection.password !== undefined ? { password: connection.password } : {}),
      ...(connection.ca !== undefined ? { ca: connection.ca } : {}),
      ...(connection.cert !== undefined ? { cert: connection.cert } : {}),
      ...(connection.key !== undefined ? { key: connection.key } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      const onConnect = () => {
        settle();
        (client.stream as Partial<Socket>).setNoDelay?.(true);
        resolve();
      };
      const fail = (error: Error) => {
        settle();
        client.end(true);
        reject(
          new OperatorError(
            `cannot connect to the broker at ${connection.url}: ${error.message} (is it running? see --broker)`,
          ),
        );
      };
      const onClose = () => fail(new Error("connection closed"));
      const timer = setTimeout(() => fail(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      // Only our own listeners go: mqtt.js keeps internal ones on the same events.
      const settle = () => {
        clearTimeout(timer);
        client.off("connect", onConnect);
        client.off("error", fail);
        client.off("close", onClose);
      };
      client.on("connect", onConnect);
      client.on("error", fail);
      client.on("close", onClose);
    });
    client.on("error", () => {}); // reported through the failing request instead
    return new OperatorClient(client, timeoutMs, connection.url, connection.username ?? null);
  }

  async close(): Promise<void> {
    if (!this.client.connected) {
      this.client.end(true);
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.client.end(true);
        resolve();
      }, 1000);
      this.client.end(false, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * Collects the retained availability and status of every intersection (of one corridor, or all),
   * until no new message came for `quietMs`, or `expect` intersections are complete, or the timeout.
   */
  async survey(
    corridor: string | null,
    options: { quietMs?: number; expect?: number } = {},
  ): Promise<IntersectionView[]> {
    const filter = `${TOPIC_ROOT}/${corridor ?? "+"}/+/`;
    const views = new ViewMap(corridor);
    const quietMs = options.quietMs ?? 400;
    await new Promise<void>((resolve, reject) => {
      let quietTimer: NodeJS.Timeout | null = null;
      const finish = () => {
        clearTimeout(overall);
        if (quietTimer) clearTimeout(quietTimer);
        this.client.off("message", onMessage);
        resolve();
      };
      const overall = setTimeout(finish, this.timeoutMs);
      const arm = () => {
        if (quietTimer) clearTimeout(quietTimer);
        quietTimer = setTimeout(finish, quietMs);
      };
      const onMessage = (topic: string, payload: Buffer) => {
        if (!views.take(topic, payload)) return;
        if (options.expect !== undefined && views.complete >= options.expect) finish();
        else arm();
      };
      this.client.on("message", onMessage);
      this.client.subscribe([`${filter}status`, `${filter}availability`], { qos: 1 }, (error) => {
        if (error) {
          clearTimeout(overall);
          this.client.off("message", onMessage);
          reject(new OperatorError(`the broker refused the subscription: ${error.message}`));
          return;
        }
        arm();
      });
    });
    this.client.unsubscribe([`${filter}status`, `${filter}availability`]);
    return views.sorted();
  }

  /**
   * Follows the availability and status of every intersection (of one corridor, or all) as they
   * change, until `stop()`. `lost` resolves when the connection to the broker ends (it is not
   * reopened: the caller says so and exits).
   */
  async follow(corridor: string | null): Promise<StatusFollower> {
    const filter = `${TOPIC_ROOT}/${corridor ?? "+"}/+/`;
    const topics = [`${filter}status`, `${filter}availability`];
    const views = new ViewMap(corridor);
    const onMessage = (topic: string, payload: Buffer) => void views.take(topic, payload);
    let onClose = () => {};
    const lost = new Promise<void>((resolve) => {
      onClose = resolve;
    });
    this.client.on("message", onMessage);
    this.client.on("close", onClose);
    const stop = () => {
      this.client.off("message", onMessage);
      this.client.off("close", onClose);
      if (this.client.connected) this.client.unsubscribe(topics);
    };
    await new Promise<void>((resolve, reject) => {
      this.client.subscribe(topics, { qos: 1 }, (error) => {
        if (!error) return resolve();
        stop();
        reject(new OperatorError(`the broker refused the subscription: ${error.message}`));
      });
    });
    return { views: () => views.sorted(), lost, stop };
  }

  /** Finds which corridor an intersection belongs to, from its retained status. */
  async corridorOf(intersection: string): Promise<string> {
    const views = await this.survey(null);
    const found = views.filter((v) => v.intersection === intersection);
    if (found.length === 0)
      throw new OperatorError(
        `no gateway for intersection ${intersection} has published its status on this broker (check the id, or give --corridor)`,
      );
    if (found.length > 1)
      throw new OperatorError(
        `intersection ${intersection} exists in several corridors (${found.map((v) => v.corridor).join(", ")}): give --corridor`,
      );
    return (found[0] as IntersectionView).corridor;
  }

  /** Sends a command to one gateway and waits for its reply (matched by correlation id). */
  async command(
    corridor: string,
    intersection: string,
    name: CommandName,
    body: Record<string, unknown> & { by: string },
    /** How long to wait for the reply (a plan push replies once decided). */
    timeoutMs = this.timeoutMs,
  ): Promise<Reply> {
    const topics = intersectionTopics(corridor, intersection);
    const id = randomUUID();
    return await new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new OperatorError(
            `no reply from ${intersection} within ${timeoutMs} ms (is its gateway online? try greenwave status)`,
          ),
        );
      }, timeoutMs);
      const onMessage = (topic: string, payload: Buffer) => {
        if (topic !== topics.reply) return;
        try {
          const reply = JSON.parse(payload.toString("utf8")) as Reply;
          if (reply.id !== id) return;
          cleanup();
          resolve(reply);
        } catch {
          // not ours
        }
      };
      // MQTT 3.1.1 cannot refuse a publish: a broker that will not take it closes the connection.
      const onClose = () => {
        cleanup();
        reject(
          new OperatorError(
            `the broker closed the connection after the ${name} command: is this user allowed to send commands (operators only)?`,
          ),
        );
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.client.off("message", onMessage);
        this.client.off("close", onClose);
      };
      this.client.on("message", onMessage);
      this.client.on("close", onClose);
      this.subscribeReplies(topics.reply, (error) => {
        if (error) {
          cleanup();
          reject(
            new OperatorError(`the broker refused the subscription to ${topics.reply}: ${error.message}`),
          );
          return;
        }
        this.client.publish(
          topics.command(name, this.login ?? undefined),
          JSON.stringify({ v: PROTOCOL_VERSION, id, ...body }),
          { qos: 1 },
          (publishError) => {
            if (publishError) {
              cleanup();
              reject(new OperatorError(`could not publish the command: ${publishError.message}`));
            }
          },
        );
      });
    });
  }

  private subscribeReplies(topic: string, then: (error: Error | null) => void): void {
    if (this.replyTopics.has(topic)) return then(null);
    this.client.subscribe(topic, { qos: 1 }, (error) => {
      if (!error) this.replyTopics.add(topic);
      then(error ?? null);
    });
  }

  /** The underlying client, for tests that publish raw payloads. */
  get raw(): MqttClient {
    return this.client;
  }
}
