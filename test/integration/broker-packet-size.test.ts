import { connect, type Socket } from "node:net";
import fc from "fast-check";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { MAX_BROKER_PACKET_BYTES, type RunningBroker, startBroker } from "../../gateway/broker/broker.js";
import {
  guardChunk,
  PACKET_GUARD_START,
  type PacketGuardState,
} from "../../gateway/broker/packet-size-guard.js";

/** The MQTT remaining-length encoding: 7 bits a byte, least significant first, high bit "more". */
function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

function packet(type: number, body: Uint8Array): Uint8Array {
  return Uint8Array.from([type, ...remainingLength(body.length), ...body]);
}

function feed(chunks: readonly Uint8Array[], max: number): ReturnType<typeof guardChunk> {
  let state: PacketGuardState = PACKET_GUARD_START;
  for (const chunk of chunks) {
    const step = guardChunk(state, chunk, max);
    if (!step.ok) return step;
    state = step.state;
  }
  return { ok: true, state };
}

/** Splits bytes at the given cut points (any chunking a TCP stream may deliver). */
function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  return out;
}

describe("the broker's packet-size guard (pure)", () => {
  it("passes any stream of packets within the limit, however it is chunked, and stops at the header of the first one over it", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (sizes, cuts) => {
          const max = 2000;
          const packets = sizes.map((n) => packet(0x30, new Uint8Array(n)));
          const stream = Uint8Array.from(packets.flatMap((p) => [...p]));
          const verdict = feed(split(stream, cuts), max);
          const firstOver = sizes.findIndex((n) => n > max);
          if (firstOver === -1) expect(verdict.ok).toBe(true);
          else expect(verdict).toEqual({ ok: false, declared: sizes[firstOver] });
        },
      ),
    );
  });

  it("refuses a remaining length longer than four bytes", () => {
    expect(feed([Uint8Array.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])], 1e9)).toEqual({
      ok: false,
      declared: null,
    });
  });
});

const brokers: RunningBroker[] = [];
afterEach(async () => {
  for (const b of brokers.splice(0)) await b.close();
});

describe("the embedded broker against an oversized PUBLISH (aedes on loopback)", () => {
  it("closes the connection at the packet's header, before its body is buffered; a publish at the limit still goes through", async () => {
    const broker = await startBroker({ host: "127.0.0.1", port: 0, users: null });
    brokers.push(broker);
    const connectBody = Uint8Array.from([0, 4, 77, 81, 84, 84, 4, 0x02, 0, 60, 0, 4, 97, 98, 117, 115]);
    const socket: Socket = connect(broker.port, "127.0.0.1");
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.write(packet(0x10, connectBody));
    await new Promise<void>((resolve) => socket.once("data", () => resolve())); // CONNACK
    const declared = 250 * 1024 * 1024;
    const topic = Buffer.from("greenwave/v1/x");
    socket.write(Uint8Array.from([0x30, ...remainingLength(declared), 0, topic.length, ...topic]));
    let sent = 0;
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.on("error", () => {});
    const chunk = Buffer.alloc(64 * 1024);
    const writer = setInterval(() => {
      if (socket.destroyed || sent >= 64 * 1024 * 1024) return;
      socket.write(chunk);
      sent += chunk.length;
    }, 1);
    await closed;
    clearInterval(writer);
    expect(broker.counters.tooLarge).toBe(1);
    // Closed long before the body: a few chunks at most got on the wire.
    expect(sent).toBeLessThan(16 * 1024 * 1024);

    // A legitimate large publish (a plan push is up to 128 kB) still passes.
    const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    await client.subscribeAsync("greenwave/v1/c/x/status");
    const got = new Promise<number>((resolve) => client.once("message", (_t, p) => resolve(p.length)));
    await client.publishAsync("greenwave/v1/c/x/status", Buffer.alloc(200 * 1024), { qos: 1 });
    expect(await got).toBe(200 * 1024);
    expect(MAX_BROKER_PACKET_BYTES).toBeGreaterThan(256 * 1024);
    await client.endAsync();
  }, 30_000);
});
