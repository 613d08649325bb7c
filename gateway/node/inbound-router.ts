import {
  type CorridorEnvelope,
  type DecisionRecord,
  decisionRecordSchema,
  parseCorridorMessage,
} from "../protocol/corridor-messages.js";
import { classifyInbound, commandSender } from "../protocol/inbound-routes.js";
import { parsePayload } from "../protocol/messages.js";
import type { Clock } from "../shell/clock.js";
import { DropWatch } from "../shell/drop-watch.js";
import {
  type DropReason,
  type InboundClass,
  type InboundMessage,
  InboundQueue,
} from "../shell/inbound-queue.js";
import type { Logger } from "../shell/log.js";
import type { GatewayMetrics } from "../shell/metrics.js";

/** What a feature takes from the network, by class, already parsed; true when it took the message. */
export interface InboundHandlers {
  corridor: (envelope: CorridorEnvelope) => boolean;
  /** `publishedBy`: the branch the record was retained under (the broker's ACL vouches for it). */
  decision: (record: DecisionRecord, publishedBy: string) => boolean;
  /** `operator`: the sender's broker login from the topic (null: a topic without one). */
  command: (name: string, operator: string | null, payload: Buffer) => boolean;
}

/**
 * Every message from the broker comes through here, as mqtt.js parses it: classified by topic,
 * refused if it is a retained command or inbox message (a command is an act of a person now, never a
 * replay), and queued, bounded and rate-limited per sender (gateway/shell/inbound-queue.ts). Its work
 * is done later, in slices: parsed by class, then offered to the features that registered for the
 * class, in registration order, until one takes it.
 */
export class InboundRouter {
  private readonly queue: InboundQueue;
  private readonly dropWatch: DropWatch;
  private readonly handlers: { [K in InboundClass]: InboundHandlers[K][] } = {
    corridor: [],
    decision: [],
    command: [],
  };

  constructor(
    private readonly ids: {
      readonly corridor: string;
      readonly intersection: string;
      readonly commandPrefix: string;
    },
    private readonly metrics: GatewayMetrics,
    log: Logger,
    clock: Clock,
  ) {
    this.dropWatch = new DropWatch(
      (summary) =>
        log.warn(
          { dropped: summary },
          "incoming messages dropped before any work (rate limit, full queue or retained command): see greenwave_inbound_dropped_total",
        ),
      () => clock.now().monoMs,
    );
    this.queue = new InboundQueue(
      (message) => this.work(message),
      (message, reason) => this.dropped(message.cls, reason, message.sender),
      () => clock.now().monoMs,
    );
  }

  on<K extends InboundClass>(cls: K, handler: InboundHandlers[K]): void {
    this.handlers[cls].push(handler);
  }

  admit(topic: string, payload: Buffer, retained: boolean): void {
    const route = classifyInbound(topic, this.ids.corridor, this.ids.intersection);
    if (!route) {
      this.metrics.mqttRejected.inc({ reason: "unexpected-topic" });
      return;
    }
    // Decision records are retained by design; nothing else that comes in may be.
    if (retained && route.cls !== "decision") return this.dropped(route.cls, "retained", route.sender);
    this.queue.offer({ topic, payload, ...route });
  }

  close(): void {
    this.queue.close();
  }

  private dropped(cls: InboundClass, reason: DropReason | "retained", sender: string): void {
    this.metrics.inboundDropped.inc({ class: cls, reason });
    this.dropWatch.count(`${cls} from ${sender}: ${reason}`);
  }

  private work(message: InboundMessage): void {
    switch (message.cls) {
      case "corridor": {
        const parsed = parseCorridorMessage(message.topic, message.payload);
        if (!parsed.ok) return this.metrics.mqttRejected.inc({ reason: `corridor-${parsed.reason}` });
        return this.offer("corridor", (h) => h(parsed.envelope));
      }
      case "decision": {
        const record = parsePayload(decisionRecordSchema, message.payload);
        if (!record) return this.metrics.mqttRejected.inc({ reason: "corridor-invalid" });
        return this.offer("decision", (h) => h(record, message.sender));
      }
      case "command": {
        const { name, operator } = commandSender(message.topic.slice(this.ids.commandPrefix.length));
        return this.offer("command", (h) => h(name, operator, message.payload));
      }
    }
  }

  private offer<K extends InboundClass>(cls: K, take: (handler: InboundHandlers[K]) => boolean): void {
    for (const handler of this.handlers[cls]) if (take(handler)) return;
    this.metrics.mqttRejected.inc({ reason: "unhandled" });
  }
}

/**
 * Which feature takes what comes in: the coordinator its runs' messages first, then the participant;
 * decision records the participant; commands the operator commands.
 */
export function registerRoutes(
  router: InboundRouter,
  features: {
    readonly coordinator: { take(envelope: CorridorEnvelope): boolean } | null;
    readonly participant: {
      onMessage(envelope: CorridorEnvelope): void;
      onDecisionRecord(record: DecisionRecord, publishedBy: string): void;
    };
    readonly commands: { take(name: string, operator: string | null, payload: Buffer): boolean };
  },
): void {
  const { coordinator, participant, commands } = features;
  if (coordinator) router.on("corridor", (envelope) => coordinator.take(envelope));
  router.on("corridor", (envelope) => {
    participant.onMessage(envelope);
    return true;
  });
  router.on("decision", (record, publishedBy) => {
    participant.onDecisionRecord(record, publishedBy);
    return true;
  });
  router.on("command", (name, operator, payload) => commands.take(name, operator, payload));
}
