/**
 * TraCI's wire format (simulators/traffic/traci/codec.ts), pure: round trips of every value type and of
 * both command length forms, and refusals of truncated, oversized and mismatched messages.
 */
import { describe, expect, it } from "vitest";
import {
  COMMAND,
  type Expectation,
  Reader,
  STATUS,
  type TraciValue,
  VARIABLE,
  Writer,
  decodeMessage,
  decodeReply,
  decodeVariableResponse,
  decodeVehicleData,
  encodeCommand,
  encodeMessage,
  getVariableCommand,
  simulationStepCommand,
  statusCommand,
  variableResponseContent,
} from "../../simulators/traffic/traci/codec.js";
import { TraciError } from "../../simulators/traffic/traci/errors.js";

const ctx = { command: "test", objectId: "j1" };
const MAX = 1 << 20;

const roundTrip = (v: TraciValue): TraciValue => {
  const r = new Reader(new Writer().typed(v).finish(), ctx);
  const back = r.typed();
  r.end("the value");
  return back;
};

/** A reply as SUMO builds it: the commands, then the total length in front. */
const reply = (...commands: Uint8Array[]): Uint8Array => encodeMessage(commands);
const subscriptions = (n: number): Uint8Array => new Writer().int(n).finish();

const errorOf = (f: () => unknown): TraciError => {
  try {
    f();
  } catch (e) {
    if (e instanceof TraciError) return e;
    throw e;
  }
  throw new Error("expected a TraciError");
};

describe("TraCI values", () => {
  it("round-trip every type, nested compounds and non-ASCII strings included", () => {
    const values: TraciValue[] = [
      { type: "ubyte", value: 0 },
      { type: "ubyte", value: 255 },
      { type: "byte", value: -128 },
      { type: "byte", value: 127 },
      { type: "int", value: -2_147_483_648 },
      { type: "int", value: 2_147_483_647 },
      { type: "double", value: 0.1 },
      { type: "double", value: -1e300 },
      { type: "string", value: "" },
      { type: "string", value: "GGrryyOo" },
      { type: "string", value: "Straße→" },
      { type: "stringList", value: [] },
      { type: "stringList", value: ["a", "", "loop_1"] },
      {
        type: "compound",
        value: [
          { type: "int", value: 2 },
          { type: "compound", value: [{ type: "string", value: "x" }] },
          { type: "double", value: 3.5 },
        ],
      },
    ];
    for (const v of values) expect(roundTrip(v)).toEqual(v);
  });

  it("are big-endian with a type tag, strings with a 4-byte length", () => {
    expect([...new Writer().typed({ type: "int", value: 258 }).finish()]).toEqual([0x09, 0, 0, 1, 2]);
    expect([...new Writer().typed({ type: "string", value: "ab" }).finish()]).toEqual([
      0x0c, 0, 0, 0, 2, 0x61, 0x62,
    ]);
    expect([...new Writer().typed({ type: "double", value: 1 }).finish()]).toEqual([
      0x0b, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0,
    ]);
  });

  it("refuses out-of-range numbers when writing", () => {
    expect(() => new Writer().ubyte(256)).toThrow(RangeError);
    expect(() => new Writer().byte(-129)).toThrow(RangeError);
    expect(() => new Writer().int(2 ** 31)).toThrow(RangeError);
    expect(() => new Writer().int(1.5)).toThrow(RangeError);
  });

  it("a truncated value, an unknown tag, a lying count or deep nesting is a malformed TraciError", () => {
    const bytes = new Writer().typed({ type: "string", value: "hello" }).finish();
    for (let cut = 0; cut < bytes.length; cut++) {
      const e = errorOf(() => new Reader(bytes.subarray(0, cut), ctx).typed());
      expect(e.kind).toBe("malformed");
      expect(e.message).toMatch(/test on 'j1'/);
    }
    expect(errorOf(() => new Reader(Uint8Array.of(0x42, 0), ctx).typed()).message).toMatch(/type tag 0x42/);
    // A string list announcing two billion strings in 4 bytes: refused without looping.
    const lying = new Writer().ubyte(0x0e).int(2_000_000_000).int(0).finish();
    expect(errorOf(() => new Reader(lying, ctx).typed()).message).toMatch(/string list of 2000000000/);
    const negative = new Writer().ubyte(0x0c).int(-1).finish();
    expect(errorOf(() => new Reader(negative, ctx).typed()).message).toMatch(/negative length/);
    let deep: TraciValue = { type: "int", value: 1 };
    for (let i = 0; i < 20; i++) deep = { type: "compound", value: [deep] };
    expect(errorOf(() => new Reader(new Writer().typed(deep).finish(), ctx).typed()).message).toMatch(
      /nested deeper/,
    );
  });
});

describe("TraCI framing", () => {
  it("uses the short length up to 255 bytes and the extended length beyond, both round-tripping", () => {
    const small = new Uint8Array(253).fill(7);
    const short = encodeCommand(0xc2, small);
    expect(short[0]).toBe(255);
    expect(short[1]).toBe(0xc2);
    const big = new Uint8Array(254).fill(9);
    const extended = encodeCommand(0xc2, big);
    expect([...extended.subarray(0, 6)]).toEqual([0, 0, 0, 1, 4, 0xc2]); // 0, then 260 = 1 + 4 + 1 + 254
    const message = encodeMessage([short, extended, encodeCommand(0x02, new Uint8Array(0))]);
    expect(new DataView(message.buffer).getInt32(0)).toBe(message.length);
    const commands = decodeMessage(message, MAX, ctx);
    expect(commands.map((c) => [c.id, c.content.length])).toEqual([
      [0xc2, 253],
      [0xc2, 254],
      [0x02, 0],
    ]);
    expect(commands[1]?.content).toEqual(big);
  });

  it("a truncated message is a malformed TraciError at every cut", () => {
    const message = encodeMessage([getVariableCommand(COMMAND.getTrafficLightVariable, 0x20, "j1")]);
    for (let cut = 0; cut < message.length; cut++) {
      const e = errorOf(() => decodeMessage(message.subarray(0, cut), MAX, ctx));
      expect(e.kind).toBe("malformed");
    }
    // The header says the right length, but a command inside claims more than is left.
    const lying = Uint8Array.from(message);
    lying[4] = 200;
    expect(errorOf(() => decodeMessage(lying, MAX, ctx)).message).toMatch(/needs 198 bytes/);
    // A command of length 1 cannot even hold its id.
    expect(errorOf(() => decodeMessage(Uint8Array.of(0, 0, 0, 6, 1, 0), MAX, ctx)).message).toMatch(
      /command of length 1/,
    );
  });

  it("a message over the bound is a too-large TraciError, decided from its header alone", () => {
    const header = new Writer().int(64 * 1024 * 1024).finish();
    const e = errorOf(() => decodeMessage(header, MAX, ctx));
    expect(e.kind).toBe("too-large");
    expect(e.message).toMatch(/67108864 bytes, over the 1048576-byte bound/);
    expect(errorOf(() => decodeMessage(new Writer().int(2).finish(), MAX, ctx)).message).toMatch(
      /announcing 2 bytes/,
    );
  });
});

describe("TraCI replies", () => {
  const getState: Expectation = {
    command: "trafficLightGetState",
    objectId: "j1",
    commandId: COMMAND.getTrafficLightVariable,
    responseId: COMMAND.getTrafficLightVariable + 0x10,
  };
  const setState = (id: string): Expectation => ({
    command: "trafficLightSetState",
    objectId: id,
    commandId: COMMAND.setTrafficLightVariable,
    responseId: null,
  });
  const step: Expectation = {
    command: "simulationStep",
    commandId: COMMAND.simulationStep,
    responseId: "subscriptions",
  };

  it("reads a get's status and response, checking variable and object", () => {
    const message = reply(
      statusCommand(COMMAND.getTrafficLightVariable, STATUS.ok, ""),
      encodeCommand(
        0xb2,
        variableResponseContent(VARIABLE.trafficLightState, "j1", { type: "string", value: "GrGr" }),
      ),
    );
    const [content] = decodeReply(message, [getState], MAX);
    expect(decodeVariableResponse(content as Uint8Array, VARIABLE.trafficLightState, getState)).toEqual({
      type: "string",
      value: "GrGr",
    });
    const other = variableResponseContent(VARIABLE.trafficLightState, "j2", { type: "string", value: "G" });
    expect(
      errorOf(() => decodeVariableResponse(other, VARIABLE.trafficLightState, getState)).message,
    ).toMatch(/an answer about 'j2'/);
  });

  it("reads several statuses then the step and its subscription results (dropped)", () => {
    const message = reply(
      statusCommand(COMMAND.setTrafficLightVariable, STATUS.ok, ""),
      statusCommand(COMMAND.setTrafficLightVariable, STATUS.ok, ""),
      statusCommand(COMMAND.simulationStep, STATUS.ok, ""),
      subscriptions(2),
      encodeCommand(0xe0, new Uint8Array(10)),
      encodeCommand(0xe2, new Uint8Array(300)),
    );
    expect(decodeReply(message, [setState("a"), setState("b"), step], MAX)).toEqual([null, null, null]);
  });

  it("an error status is a refused TraciError naming the command, its object and SUMO's words", () => {
    const message = reply(
      statusCommand(COMMAND.setTrafficLightVariable, STATUS.ok, ""),
      statusCommand(COMMAND.setTrafficLightVariable, STATUS.failed, "Traffic light 'b' is not known"),
      statusCommand(COMMAND.simulationStep, STATUS.ok, ""),
      subscriptions(0),
    );
    const e = errorOf(() => decodeReply(message, [setState("a"), setState("b"), step], MAX));
    expect(e).toMatchObject({ kind: "refused", command: "trafficLightSetState", objectId: "b" });
    expect(e.message).toBe(
      "SUMO refused trafficLightSetState on 'b': failed: Traffic light 'b' is not known",
    );
    const notImplemented = reply(
      statusCommand(COMMAND.getTrafficLightVariable, STATUS.notImplemented, "nope"),
    );
    expect(errorOf(() => decodeReply(notImplemented, [getState], MAX)).message).toMatch(
      /not implemented: nope/,
    );
  });

  it("a reply that does not fit the request is malformed", () => {
    const cases: [Uint8Array, Expectation[], RegExp][] = [
      // The answers of a multi-step message (SUMO drops the statuses before the step).
      [
        reply(statusCommand(COMMAND.simulationStep, STATUS.ok, ""), subscriptions(0)),
        [setState("a"), step],
        /status for command 0x02 where 0xc2/,
      ],
      // A get whose response is missing.
      [
        reply(statusCommand(COMMAND.getTrafficLightVariable, STATUS.ok, "")),
        [getState],
        /ends before this command's response/,
      ],
      // A response for another domain.
      [
        reply(
          statusCommand(COMMAND.getTrafficLightVariable, STATUS.ok, ""),
          encodeCommand(0xb0, new Uint8Array(6)),
        ),
        [getState],
        /response 0xb0 where 0xb2/,
      ],
      // More than asked for.
      [
        reply(statusCommand(COMMAND.setTrafficLightVariable, STATUS.ok, ""), statusCommand(0xc2, 0, "")),
        [setState("a")],
        /unread bytes/,
      ],
      // A step announcing subscription results that are not there.
      [
        reply(statusCommand(COMMAND.simulationStep, STATUS.ok, ""), subscriptions(1000)),
        [step],
        /1000 subscription results/,
      ],
    ];
    for (const [message, expected, why] of cases) {
      const e = errorOf(() => decodeReply(message, expected, MAX));
      expect(e.kind).toBe("malformed");
      expect(e.message).toMatch(why);
    }
  });

  it("decodes an induction loop's vehicle data and refuses a miscounted one", () => {
    const packet = (id: string, entry: number, leave: number): TraciValue[] => [
      { type: "string", value: id },
      { type: "double", value: 5 },
      { type: "double", value: entry },
      { type: "double", value: leave },
      { type: "string", value: "car" },
    ];
    const value: TraciValue = {
      type: "compound",
      value: [{ type: "int", value: 2 }, ...packet("v0", 12.3, 12.8), ...packet("v1", 13, -1)],
    };
    expect(decodeVehicleData(roundTrip(value), ctx)).toEqual([
      { vehicleId: "v0", lengthM: 5, entryTimeS: 12.3, leaveTimeS: 12.8, typeId: "car" },
      { vehicleId: "v1", lengthM: 5, entryTimeS: 13, leaveTimeS: -1, typeId: "car" },
    ]);
    const miscounted: TraciValue = {
      type: "compound",
      value: [{ type: "int", value: 3 }, ...packet("v0", 1, 2)],
    };
    expect(errorOf(() => decodeVehicleData(miscounted, ctx)).message).toMatch(
      /announcing 3 packets in 5 items/,
    );
    const [id, length, ...restOfPacket] = packet("v0", 1, 2);
    const swapped = [length, id, ...restOfPacket] as TraciValue[];
    const wrongType: TraciValue = { type: "compound", value: [{ type: "int", value: 1 }, ...swapped] };
    expect(errorOf(() => decodeVehicleData(wrongType, ctx)).message).toMatch(
      /a double where a string was due/,
    );
  });

  it("encodes the step's target time as an untagged double", () => {
    expect([...simulationStepCommand(0.5)]).toEqual([10, 0x02, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0]);
  });
});
