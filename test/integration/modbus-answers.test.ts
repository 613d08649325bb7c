import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { ModuleLayout } from "../../devices/io-map.js";
import { openLink } from "../../devices/modbus/link.js";
import { ModuleClient } from "../../devices/modbus/module-client.js";
import { OutputStage } from "../../devices/output-stage.js";
import { loadIntersectionSetup } from "../../gateway/config/load.js";
import { lampsFor } from "../../gateway/core/lamps.js";
import type { Aspect, Lamps } from "../../gateway/core/model.js";
import type { FaultLatch } from "../../gateway/core/monitor.js";
import { systemClock } from "../../gateway/shell/clock.js";
import { IntersectionRunner } from "../../gateway/shell/intersection-runner.js";
import { MemoryLatchStore } from "../../gateway/shell/latch-store.js";
import { SerialPort } from "serialport";
import { crc16 } from "../../devices/modbus/answer-check.js";
import { type RunningSimulator, startSimulator } from "../../simulators/io-module/simulator.js";
import { openPtyPair } from "../support/pty-pair.js";
import { hasTool } from "../support/tools.js";

/**
 * The gateway's Modbus master against things on the Modbus port that are not a Modbus module: a plain
 * TCP echo service, and a server that answers every request with one thing wrong. Every such answer
 * must count as an invalid answer, never reach the conflict monitor as lamps, and end in a lost
 * device that blames the device and its link, not the lamps. A real (simulated) module still works.
 */

// elm: M (channels 0-2), S (3-5), PS (6-7), PM (8-9) on a generic 32-channel DO/DI module with a watchdog.
const setup = loadIntersectionSetup("config/intersections/elm.yaml");
const intersection = setup.intersection.intersection;
const baseLayout = setup.intersection.modules[0] as ModuleLayout;
const MAIN: Aspect[] = ["green", "red", "walk", "dont-walk"];
const lamps = (aspects: Aspect[]): Lamps[] => aspects.map((a) => lampsFor(a, true));
const mono = () => performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A TCP server on loopback; `answer` gets every chunk a client sends and may write back. */
async function serve(answer: (socket: Socket, bytes: Buffer) => void): Promise<number> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    socket.on("data", (bytes) => answer(socket, bytes));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return (server.address() as { port: number }).port;
}

/** The plainest of non-Modbus services: everything back as it came. */
const echo = (socket: Socket, bytes: Buffer) => socket.write(bytes);

/** Splits what a Modbus TCP master sends into request frames (MBAP length). */
function framesOf(bytes: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let at = 0; at + 7 <= bytes.length;) {
    const length = 6 + bytes.readUInt16BE(at + 4);
    frames.push(bytes.subarray(at, at + length));
    at += length;
  }
  return frames;
}

/** The correct Modbus TCP answer to a request frame (every coil, input and register 0). */
function correctAnswer(request: Buffer): Buffer {
  const pdu = request.subarray(7);
  const fc = pdu[0] as number;
  const quantity = pdu.readUInt16BE(3);
  let answer: Buffer;
  if (fc === 0x01 || fc === 0x02)
    answer = Buffer.from([fc, Math.ceil(quantity / 8), ...Array(Math.ceil(quantity / 8)).fill(0)]);
  else if (fc === 0x03) answer = Buffer.from([fc, 2 * quantity, ...Array(2 * quantity).fill(0)]);
  else if (fc === 0x05 || fc === 0x06) answer = Buffer.from(pdu.subarray(0, 5));
  else answer = Buffer.from(pdu.subarray(0, 5));
  return mbap(request.readUInt16BE(0), request[6] as number, answer);
}

function mbap(transactionId: number, unitId: number, pdu: Buffer, protocolId = 0): Buffer {
  const header = Buffer.alloc(7);
  header.writeUInt16BE(transactionId, 0);
  header.writeUInt16BE(protocolId, 2);
  header.writeUInt16BE(pdu.length + 1, 4);
  header.writeUInt8(unitId, 6);
  return Buffer.concat([header, pdu]);
}

/** A server that answers every request correctly, then spoils the answer with `spoil`. */
function lying(spoil: (answer: Buffer, request: Buffer) => Buffer) {
  return (socket: Socket, bytes: Buffer) => {
    for (const request of framesOf(bytes)) socket.write(spoil(correctAnswer(request), request));
  };
}

function layoutAt(port: number, overrides: Partial<ModuleLayout> = {}): ModuleLayout {
  return {
    ...baseLayout,
    link: { kind: "tcp", host: "127.0.0.1", port },
    timeoutMs: 150,
    retries: 1,
    faultWindowMs: 500,
    watchdogMs: 1000,
    ...overrides,
  };
}

async function stageAt(port: number, overrides: Partial<ModuleLayout> = {}): Promise<OutputStage> {
  const stage = new OutputStage(intersection, [layoutAt(port, overrides)], mono);
  cleanups.push(() => stage.close());
  await stage.open();
  return stage;
}

describe("an echo server on the Modbus port", () => {
  it("gets no exchange counted as good: every answer is invalid, none becomes lamp feedback", async () => {
    const stage = await stageAt(await serve(echo));
    const client = stage.modules[0]?.client as ModuleClient;
    for (let tick = 0; tick < 5; tick++) {
      const started = mono();
      const result = await stage.exchange(lamps(MAIN));
      expect(result.observed).toBeNull();
      expect(result.errors[0]?.failure).toBe("invalid-answer");
      expect(result.errors[0]?.message).toMatch(
        /the answer to write registers \d+–\d+ echoed the request: 00 /,
      );
      // Refused at once, not after the 150 ms timeout: the tick keeps its time.
      expect(mono() - started).toBeLessThan(150);
    }
    expect(client.counters.ok).toBe(0);
    expect(client.counters.failures["invalid-answer"]).toBeGreaterThanOrEqual(5);
    expect(client.counters.failures.timeout).toBe(0);
  });

  it("is reported lost as 'not a Modbus device', naming host:port, after its fault window", async () => {
    const port = await serve(echo);
    const stage = await stageAt(port);
    let lost: { device: string; detail: string }[] = [];
    const started = mono();
    while (lost.length === 0 && mono() - started < 3_000) {
      lost = (await stage.exchange(lamps(MAIN))).lost;
      await sleep(50);
    }
    expect(lost[0]?.device).toBe("io1");
    expect(lost[0]?.detail).toMatch(
      new RegExp(
        `^device io1 at 127\\.0\\.0\\.1:${port} is not a Modbus device \\(answer to write registers \\d+–\\d+ echoed the request: [0-9a-f ]+… \\(17 bytes\\); \\d+ exchanges in a row refused\\): check the host:port and unit id; no good exchange for \\d+ ms \\(fault window 500 ms\\)$`,
      ),
    );
  });

  it("drives a running intersection to a device-lost fault, never a lamp fault (red fail, mismatch)", async () => {
    const stage = await stageAt(await serve(echo));
    const faults: FaultLatch[] = [];
    const runner = new IntersectionRunner(
      intersection,
      setup.initialPlan,
      systemClock,
      new MemoryLatchStore(),
      {
        exchange: (written) => stage.exchange(written),
        onFault: (latch) => faults.push(latch),
      },
    );
    runner.start();
    cleanups.push(() => runner.stop());
    const started = mono();
    while (faults.length === 0 && mono() - started < 3_000) await sleep(50);
    await runner.stop();
    expect(faults.map((f) => f.kind)).toEqual(["device-lost"]);
    expect(faults[0]?.message).toContain("is not a Modbus device");
    expect(faults[0]?.message).toContain("check the host:port and unit id");
  });
});

describe("a server that answers with one thing wrong", () => {
  const cases: [string, (answer: Buffer, request: Buffer) => Buffer, RegExp][] = [
    [
      "a transaction id it was never sent",
      (answer) =>
        Buffer.concat([Buffer.from([(answer[0] as number) ^ 0x5a, answer[1] as number]), answer.subarray(2)]),
      /had transaction id \d+, which answers no request of ours \(this one was \d+\)/,
    ],
    [
      "another protocol id",
      (answer) => mbap(answer.readUInt16BE(0), answer[6] as number, answer.subarray(7), 7),
      /had protocol id 7 in its MBAP header \(Modbus is 0\)/,
    ],
    [
      "another unit id",
      (answer) => mbap(answer.readUInt16BE(0), 9, answer.subarray(7)),
      /came from unit 9, not unit 1/,
    ],
    [
      "another function code",
      (answer) => mbap(answer.readUInt16BE(0), answer[6] as number, Buffer.from([0x03, 2, 0, 0])),
      /had function code 0x03, not 0x10/,
    ],
    [
      "a function code the gateway never uses",
      (answer) => mbap(answer.readUInt16BE(0), answer[6] as number, Buffer.from([0x2b, 0x0e, 1])),
      /had function code 0x2b, not 0x10/,
    ],
    [
      "an exception for another function",
      (answer) => mbap(answer.readUInt16BE(0), answer[6] as number, Buffer.from([0x83, 0x02])),
      /was an exception for function code 0x03, not 0x10/,
    ],
    [
      "a write answer naming another address",
      (answer) => {
        const spoilt = Buffer.from(answer);
        spoilt.writeUInt16BE(spoilt.readUInt16BE(8) + 1, 8);
        return spoilt;
      },
      /named address \d+, not \d+/,
    ],
    [
      "an MBAP length that disagrees with the PDU",
      (answer) => {
        const spoilt = Buffer.concat([answer, Buffer.from([0, 0])]);
        spoilt.writeUInt16BE(answer.readUInt16BE(4) + 2, 4);
        return spoilt;
      },
      /was 7 bytes long \(a write answer is 5: function, address, quantity\)/,
    ],
  ];

  it.each(cases)("%s: an invalid answer, counted by kind, no feedback", async (_name, spoil, reason) => {
    const stage = await stageAt(await serve(lying(spoil)));
    const result = await stage.exchange(lamps(MAIN));
    expect(result.observed).toBeNull();
    expect(result.errors[0]?.failure).toBe("invalid-answer");
    expect(result.errors[0]?.message).toMatch(reason);
    const client = stage.modules[0]?.client as ModuleClient;
    expect(client.counters.failures["invalid-answer"]).toBe(2); // the request and its one retry
    expect(client.counters.failures.protocol).toBe(0);
    expect(client.counters.failures.timeout).toBe(0);
  });

  it("a read answer with a wrong byte count never becomes lamps", async () => {
    // Writes answered correctly; the discrete-input read answers 2 bytes for 32 inputs (16 lamps dark).
    const port = await serve(
      lying((answer, request) =>
        request[7] === 0x02 ? mbap(answer.readUInt16BE(0), 1, Buffer.from([0x02, 2, 0, 0])) : answer,
      ),
    );
    const stage = await stageAt(port);
    const result = await stage.exchange(lamps(MAIN));
    expect(result.observed).toBeNull();
    expect(result.errors[0]?.failure).toBe("invalid-answer");
    expect(result.errors[0]?.message).toMatch(
      /the answer to read inputs 0–31 had byte count 2 where 32 bits need 4/,
    );
  });

  it("a read answer whose byte count runs past its frame is refused, not left to time out", async () => {
    const port = await serve(
      lying((answer, request) =>
        request[7] === 0x02 ? mbap(answer.readUInt16BE(0), 1, Buffer.from([0x02, 4, 0])) : answer,
      ),
    );
    const stage = await stageAt(port);
    const result = await stage.exchange(lamps(MAIN));
    expect(result.errors[0]?.message).toMatch(/was 3 bytes long where byte count 4 makes 6/);
    // And the link is in step afterwards: a correct answer is taken again.
    const client = stage.modules[0]?.client as ModuleClient;
    await client.writeCoils(0, Array(32).fill(false));
  });
});

describe("a late answer is not an invalid one", () => {
  it("skips an answer to an earlier, timed-out request and takes the right one", async () => {
    let held: Buffer | null = null;
    let first = true;
    const port = await serve((socket, bytes) => {
      for (const request of framesOf(bytes)) {
        if (first) {
          // Too slow for the first request: its answer goes out just before the next one's.
          first = false;
          held = correctAnswer(request);
          continue;
        }
        if (held) socket.write(held);
        held = null;
        socket.write(correctAnswer(request));
      }
    });
    const link = openLink({ kind: "tcp", host: "127.0.0.1", port });
    cleanups.push(() => link.close());
    await link.open();
    const client = new ModuleClient(link, "io1", 1, 100, 0);
    await expect(client.writeCoils(0, Array(32).fill(false))).rejects.toMatchObject({ failure: "timeout" });
    expect(await client.readInputs(0, 32)).toEqual(Array(32).fill(false));
    expect(link.guard.counters.lateAnswers).toBe(1);
    expect(client.counters.failures["invalid-answer"]).toBe(0);
    expect(client.counters.failures.protocol).toBe(0);
  });
});

describe("a real (simulated) module", () => {
  let sim: RunningSimulator;

  it("still answers correctly through the guard: writes, readback, watchdog", async () => {
    sim = await startSimulator({
      profile: baseLayout.profile,
      unitId: 1,
      host: "127.0.0.1",
      tcpPort: 0,
      controlPort: null,
    });
    cleanups.push(() => sim.stop());
    const stage = await stageAt(sim.modbusPort as number);
    for (let tick = 0; tick < 20; tick++) {
      const result = await stage.exchange(lamps(MAIN));
      expect(result.errors).toEqual([]);
      expect(result.observed).toEqual(lamps(MAIN));
    }
    const client = stage.modules[0]?.client as ModuleClient;
    expect(Object.values(client.counters.failures).every((n) => n === 0)).toBe(true);
    expect(client.link.guard.counters).toEqual({ lateAnswers: 0, strayBytes: 0 });
    expect(sim.model.watchdogTimeoutMs).toBe(1000);
  });
});

const withSocat = hasTool("socat", "the Modbus RTU answer checks over a pseudo-terminal pair");

describe.runIf(withSocat)("over RTU (a pseudo-terminal pair)", () => {
  const serial = { baudRate: 115_200, dataBits: 8 as const, parity: "none" as const, stopBits: 1 as const };

  /** The far end of the line: `answer` gets every chunk the gateway sends and may write back. */
  async function line(answer: (port: SerialPort, bytes: Buffer) => void): Promise<string> {
    const pty = await openPtyPair();
    const far = new SerialPort({ path: pty.a, ...serial, autoOpen: false });
    await new Promise<void>((resolve, reject) => far.open((e) => (e ? reject(e) : resolve())));
    far.on("data", (bytes: Buffer) => answer(far, bytes));
    cleanups.push(() => pty.close());
    cleanups.push(() => new Promise<void>((resolve) => far.close(() => resolve())));
    return pty.b;
  }

  async function rtuStage(path: string): Promise<OutputStage> {
    const layout = layoutAt(0, { link: { kind: "serial", path, serial } });
    const stage = new OutputStage(intersection, [layout], mono);
    cleanups.push(() => stage.close());
    await stage.open();
    return stage;
  }

  /** Waits for one whole request frame (RTU has no length field: the test knows its requests). */
  function whole(answer: (port: SerialPort, request: Buffer) => void) {
    let pending = Buffer.alloc(0);
    return (port: SerialPort, bytes: Buffer) => {
      pending = Buffer.concat([pending, bytes]);
      const fc = pending[1];
      const length = fc === 0x0f || fc === 0x10 ? 9 + (pending[6] ?? 0) : 8;
      if (pending.length < length) return;
      const request = pending.subarray(0, length);
      pending = Buffer.alloc(0);
      answer(port, request);
    };
  }

  const withCrc = (bytes: number[]) => {
    const crc = crc16(Uint8Array.from(bytes));
    return Buffer.from([...bytes, crc & 0xff, crc >> 8]);
  };

  it("a line that echoes what the gateway sends: invalid answers, 'not a Modbus device'", async () => {
    const path = await line((port, bytes) => port.write(bytes));
    const stage = await rtuStage(path);
    const result = await stage.exchange(lamps(MAIN));
    expect(result.observed).toBeNull();
    expect(result.errors[0]?.failure).toBe("invalid-answer");
    expect(result.errors[0]?.message).toMatch(/echoed the request: 01 10 /);
    let lost: { device: string; detail: string }[] = [];
    const started = mono();
    while (lost.length === 0 && mono() - started < 3_000) lost = (await stage.exchange(lamps(MAIN))).lost;
    expect(lost[0]?.detail).toMatch(
      new RegExp(
        `^device io1 at ${path.replace(/[/.]/g, "\\$&")} unit 1 is not a Modbus device \\(answer to write registers`,
      ),
    );
    expect(lost[0]?.detail).toContain("does the adapter echo what it sends?");
  });

  it("a device that answers a read with the wrong byte count (CRC correct): refused, no lamps", async () => {
    const path = await line(
      whole((port, request) => {
        const fc = request[1] as number;
        if (fc === 0x02) port.write(withCrc([1, 0x02, 2, 0, 0]));
        else port.write(withCrc([...request.subarray(0, 6)]));
      }),
    );
    const stage = await rtuStage(path);
    const result = await stage.exchange(lamps(MAIN));
    expect(result.observed).toBeNull();
    expect(result.errors[0]?.failure).toBe("invalid-answer");
    expect(result.errors[0]?.message).toMatch(/read inputs 0–31 had byte count 2 where 32 bits need 4/);
  });
});
