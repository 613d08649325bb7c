/**
 * The TraCI client's socket shell against a fake TraCI server on loopback: what the real SUMO will not
 * do on request (stall, send too much, hang up mid-reply), and exactly what goes over the wire.
 */
import { type Server, type Socket, createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  COMMAND,
  type RawCommand,
  STATUS,
  VARIABLE,
  Writer,
  announcedLength,
  decodeMessage,
  encodeCommand,
  encodeMessage,
  statusCommand,
  variableResponseContent,
} from "../../simulators/traffic/traci/codec.js";
import { freePort } from "../../simulators/fixtures/ports.js";
import { TraciClient, TraciError } from "../../simulators/traffic/traci/index.js";

type Answer = Uint8Array | "silence" | "hang-up";

/** A TraCI server that answers each whole message with `answer(commands)`, and records the messages. */
class FakeSumo {
  readonly messages: RawCommand[][] = [];
  private readonly sockets = new Set<Socket>();
  private constructor(
    readonly server: Server,
    readonly port: number,
  ) {}

  static async start(answer: (commands: RawCommand[]) => Answer, port = 0): Promise<FakeSumo> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    const fake = new FakeSumo(server, (server.address() as { port: number }).port);
    server.on("connection", (socket) => {
      fake.sockets.add(socket);
      socket.on("close", () => fake.sockets.delete(socket));
      let buffered = Buffer.alloc(0);
      socket.on("data", (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 4) {
          const total = announcedLength(buffered, 1 << 20, { command: "fake" });
          if (buffered.length < total) return;
          const commands = decodeMessage(buffered.subarray(0, total), 1 << 20, { command: "fake" });
          buffered = buffered.subarray(total);
          fake.messages.push(commands);
          const a = answer(commands);
          if (a === "hang-up") socket.destroy();
          else if (a !== "silence") socket.write(a);
        }
      });
    });
    return fake;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** SUMO's answers: statuses for every command, the time for a time query, the step with no subscriptions. */
function sumoLike(timeS: () => number): (commands: RawCommand[]) => Answer {
  return (commands) => {
    const parts: Uint8Array[] = [];
    let stepped = false;
    for (const c of commands) {
      if (c.id === COMMAND.simulationStep) {
        stepped = true;
        continue;
      }
      parts.push(statusCommand(c.id, STATUS.ok, ""));
      if (c.id === COMMAND.getSimulationVariable) {
        const variable = c.content[0];
        const value = variable === VARIABLE.deltaT ? 0.1 : timeS();
        parts.push(
          encodeCommand(0xbb, variableResponseContent(variable ?? 0, "", { type: "double", value })),
        );
      }
      if (c.id === COMMAND.getTrafficLightVariable) {
        const id = Buffer.from(c.content.subarray(5)).toString("utf8"); // variable, then the id's length and bytes
        parts.push(encodeCommand(0xb2, variableResponseContent(0x20, id, { type: "string", value: "rrrr" })));
      }
    }
    // SUMO puts the step's answer last, whatever the order of the commands.
    if (stepped)
      parts.push(statusCommand(COMMAND.simulationStep, STATUS.ok, ""), new Writer().int(0).finish());
    return encodeMessage(parts);
  };
}

describe("TraCI client (against a fake server)", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });
  const start = async (answer: (commands: RawCommand[]) => Answer, options = {}) => {
    const fake = await FakeSumo.start(answer);
    cleanup.push(() => fake.stop());
    const client = await TraciClient.connect(fake.port, {
      timeoutMs: 500,
      connectWithinMs: 1_000,
      ...options,
    });
    cleanup.push(() => client.close());
    return { fake, client };
  };

  it("stepWith sends the states, a time query and the step in one message: one round trip per step", async () => {
    let time = 0;
    const { fake, client } = await start(sumoLike(() => time));
    const states = new Map([
      ["j1", "GGrr"],
      ["j2", "rrGG"],
    ]);
    // First: the step length and time (once), and each light's link count (once per light).
    await client.stepWith(
      new Map([
        ["j1", "rrrr"],
        ["j2", "rrrr"],
      ]),
      0.1,
    );
    const before = fake.messages.length;
    for (let k = 2; k <= 11; k++) {
      time = (k - 1) / 10;
      await client.stepWith(states, k / 10);
    }
    const perStep = fake.messages.slice(before);
    expect(perStep).toHaveLength(10);
    for (const m of perStep)
      expect(m.map((c) => c.id)).toEqual([
        COMMAND.setTrafficLightVariable,
        COMMAND.setTrafficLightVariable,
        COMMAND.getSimulationVariable,
        COMMAND.simulationStep,
      ]);
    // A target further than one step ahead: the states (with the time) first, then the step alone.
    time = 1.1;
    await client.stepWith(states, 5);
    expect(fake.messages.slice(-2).map((m) => m.map((c) => c.id))).toEqual([
      [COMMAND.setTrafficLightVariable, COMMAND.setTrafficLightVariable, COMMAND.getSimulationVariable],
      [COMMAND.simulationStep],
    ]);
  });

  it("calls made together go one at a time, each answered in order", async () => {
    const { fake, client } = await start(sumoLike(() => 7));
    const results = await Promise.all([
      client.simulationTime(),
      client.simulationStep(),
      client.simulationTime(),
    ]);
    expect(results).toEqual([7, undefined, 7]);
    expect(fake.messages.map((m) => m.length)).toEqual([1, 1, 1]);
  });

  it("no reply within the timeout is a timeout TraciError; the client is then unusable", async () => {
    const { client } = await start(() => "silence", { timeoutMs: 200 });
    const t0 = Date.now();
    const e = await client.simulationTime().catch((x: unknown) => x);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(e).toBeInstanceOf(TraciError);
    expect(e).toMatchObject({ kind: "timeout", command: "simulationTime" });
    expect((e as Error).message).toMatch(/no reply within 200 ms/);
    expect(client.isOpen).toBe(false);
    await expect(client.simulationStep()).rejects.toMatchObject({
      kind: "connection",
      command: "simulationStep",
    });
  });

  it("a reply announcing more than the bound is refused from its header", async () => {
    const huge = new Writer().int(512 * 1024 * 1024).finish();
    const { client } = await start(() => huge, { maxReplyBytes: 1024 * 1024 });
    await expect(client.trafficLightGetState("j1")).rejects.toMatchObject({
      kind: "too-large",
      command: "trafficLightGetState",
      objectId: "j1",
    });
    expect(client.isOpen).toBe(false);
  });

  it("a malformed reply is a malformed TraciError naming the command", async () => {
    const { client } = await start(() =>
      encodeMessage([statusCommand(COMMAND.getTrafficLightVariable, STATUS.ok, "")]),
    );
    await expect(client.trafficLightGetState("j9")).rejects.toMatchObject({
      kind: "malformed",
      command: "trafficLightGetState",
      objectId: "j9",
    });
  });

  it("a refused command leaves the client usable", async () => {
    let refuse = true;
    const ok = sumoLike(() => 3);
    const { client } = await start((commands) =>
      refuse
        ? ((refuse = false),
          encodeMessage([
            statusCommand(commands[0]?.id ?? 0, STATUS.failed, "Traffic light 'x' is not known"),
          ]))
        : ok(commands),
    );
    await expect(client.trafficLightGetState("x")).rejects.toMatchObject({ kind: "refused", objectId: "x" });
    expect(client.isOpen).toBe(true);
    expect(await client.simulationTime()).toBe(3);
  });

  it("the server hanging up mid-request is a connection TraciError naming the command", async () => {
    const { client } = await start(() => "hang-up");
    await expect(client.inductionLoopVehicleCount("d1")).rejects.toMatchObject({
      kind: "connection",
      command: "inductionLoopVehicleCount",
      objectId: "d1",
    });
  });

  it("connect retries while nothing listens yet, and gives up within its bound", async () => {
    const port = await freePort();
    const t0 = Date.now();
    const e = await TraciClient.connect(port, { connectWithinMs: 300 }).catch((x: unknown) => x);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(e).toMatchObject({ kind: "connection", command: "connect" });
    expect((e as Error).message).toMatch(/not within 300 ms, \d+ attempts/);

    // A server that comes up after 200 ms is found.
    setTimeout(() => {
      void FakeSumo.start(
        sumoLike(() => 0),
        port,
      ).then((fake) => cleanup.push(() => fake.stop()));
    }, 200);
    const client = await TraciClient.connect(port, { connectWithinMs: 3_000 });
    cleanup.unshift(() => client.close());
    expect(await client.simulationTime()).toBe(0);
  });
});
