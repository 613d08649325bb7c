import { randomUUID } from "node:crypto";
import mqtt, { type MqttClient } from "mqtt";
import { intersectionTopics, parseTopic, TOPIC_ROOT } from "../gateway/protocol/topics.js";

/**
 * The other end of the gateway's MQTT traffic: a subscriber to everything the gateway publishes
 * (availability, status, events, replies), counted per topic and per event type, so that the bench
 * can show that events really left the outbox. On demand, an operator's `status` command every so
 * often: each one is a forced audit event (`command`), published on …/events, and a reply.
 */

export interface MqttTraffic {
  /** Messages and payload bytes per topic kind (availability, status, events, reply, …). */
  readonly byKind: Record<string, { messages: number; bytes: number }>;
  /** Events received, per `type`, duplicates (same seq) not counted. */
  readonly eventTypes: Record<string, number>;
  /** Event sequence numbers seen more than once (QoS 1 allows it after a reconnect). */
  duplicateEvents: number;
  /** Status commands sent, and replies received. */
  pingsSent: number;
  repliesReceived: number;
}

export interface GatewayWatcher {
  readonly traffic: MqttTraffic;
  /** From now on, an operator's status command every `everyMs`. */
  ping(everyMs: number): void;
  close(): Promise<void>;
}

export async function watchGateway(
  url: string,
  corridor: string,
  intersection: string,
): Promise<GatewayWatcher> {
  const client: MqttClient = await mqtt.connectAsync(url, {
    protocolVersion: 4,
    clientId: `greenwave-operator-footprint-${randomUUID().slice(0, 8)}`,
    clean: true,
    reconnectPeriod: 1000,
  });
  const traffic: MqttTraffic = {
    byKind: {},
    eventTypes: {},
    duplicateEvents: 0,
    pingsSent: 0,
    repliesReceived: 0,
  };
  const seen = new Set<number>();
  client.on("message", (topic, payload) => {
    const parsed = parseTopic(topic);
    const kind = parsed?.kind ?? "other";
    const sum = (traffic.byKind[kind] ??= { messages: 0, bytes: 0 });
    sum.messages++;
    sum.bytes += payload.length;
    if (kind === "reply") traffic.repliesReceived++;
    if (kind !== "events") return;
    const event = JSON.parse(payload.toString()) as { seq: number; type: string };
    if (seen.has(event.seq)) {
      traffic.duplicateEvents++;
      return;
    }
    seen.add(event.seq);
    traffic.eventTypes[event.type] = (traffic.eventTypes[event.type] ?? 0) + 1;
  });
  await client.subscribeAsync(`${TOPIC_ROOT}/${corridor}/${intersection}/#`, { qos: 1 });
  const topics = intersectionTopics(corridor, intersection);
  let pinger: NodeJS.Timeout | null = null;
  return {
    traffic,
    ping(everyMs) {
      if (pinger) clearInterval(pinger);
      pinger = setInterval(() => {
        traffic.pingsSent++;
        const command = { v: 1, id: randomUUID(), by: "footprint-bench" };
        client.publish(topics.command("status"), JSON.stringify(command), { qos: 1 });
      }, everyMs);
    },
    async close() {
      if (pinger) clearInterval(pinger);
      pinger = null;
      if (client.connected || client.reconnecting) await client.endAsync();
    },
  };
}
