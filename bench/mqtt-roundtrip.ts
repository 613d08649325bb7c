import type { Socket } from "node:net";
import mqtt, { type MqttClient } from "mqtt";
import { startBroker } from "../gateway/broker/broker.js";
import { type BenchResult, elapsedMs, summarize } from "./stats.js";

/**
 * A QoS 1 request and its QoS 1 reply through the embedded broker on loopback, the shape of every
 * command and of every 2PC round: requester → broker → responder → broker → requester. Measured with
 * Nagle's algorithm off on both sides (what greenwave does) and on (the sockets' default), in one run.
 */
const ROUNDS = { noDelay: 400, nagle: 60 } as const;
const WARMUP = 10;

async function client(url: string, noDelay: boolean, id: string): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 4, clientId: id, reconnectPeriod: 0 });
  (c.stream as Partial<Socket>).setNoDelay?.(noDelay);
  return c;
}

async function measure(noDelay: boolean): Promise<number[]> {
  const broker = await startBroker({ host: "127.0.0.1", port: 0, users: null, noDelay });
  const requester = await client(broker.url, noDelay, `bench-req-${noDelay}`);
  const responder = await client(broker.url, noDelay, `bench-resp-${noDelay}`);
  try {
    responder.on("message", (_topic, payload) => {
      responder.publish("bench/reply", payload, { qos: 1 });
    });
    await responder.subscribeAsync("bench/request", { qos: 1 });
    let pending: ((payload: Buffer) => void) | null = null;
    requester.on("message", (_topic, payload) => pending?.(payload));
    await requester.subscribeAsync("bench/reply", { qos: 1 });
    const rounds = noDelay ? ROUNDS.noDelay : ROUNDS.nagle;
    const samples: number[] = [];
    const body = JSON.stringify({ v: 1, id: "x".repeat(36), by: "bench", pad: "p".repeat(120) });
    for (let i = 0; i < WARMUP + rounds; i++) {
      const started = process.hrtime.bigint();
      await new Promise<void>((resolve) => {
        pending = () => resolve();
        requester.publish("bench/request", body, { qos: 1 });
      });
      if (i >= WARMUP) samples.push(elapsedMs(started));
    }
    return samples;
  } finally {
    await requester.endAsync();
    await responder.endAsync();
    await broker.close();
  }
}

export async function benchMqttRoundTrip(): Promise<BenchResult[]> {
  const fast = await measure(true);
  const nagle = await measure(false);
  const fastResult = summarize("mqtt qos1 request/reply via aedes, TCP_NODELAY", "ms", fast);
  const nagleResult = summarize("mqtt qos1 request/reply via aedes, Nagle on", "ms", nagle, {
    ratioMedianVsNoDelay: summarize("", "", nagle).median / fastResult.median,
  });
  return [fastResult, nagleResult];
}
