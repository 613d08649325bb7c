/**
 * TraCI's wire format, pure: bytes in, values out, and back (SUMO's docs/web/docs/TraCI/Protocol.md and
 * the command pages). No socket and no clock here; the client (client.ts) does the talking.
 *
 * A message is a 4-byte big-endian total length (header included) followed by commands. A command is a
 * 1-byte length (length byte and id byte included) and a 1-byte id, then its content; when that does not
 * fit in 255 the length byte is 0 and a 4-byte length (counting the 0 byte, itself and the id) follows
 * instead. SUMO answers each command with a status command (same id: result byte and a description
 * string), then, for a command that returns something, a response command. All numbers are big-endian.
 */
import { TraciError, describeCommand } from "./errors.js";

/** Command ids (the first byte of a command). A get command's response id is the command's id + 0x10. */
export const COMMAND = {
  getVersion: 0x00,
  simulationStep: 0x02,
  setOrder: 0x03,
  close: 0x7f,
  getInductionLoopVariable: 0xa0,
  getTrafficLightVariable: 0xa2,
  getSimulationVariable: 0xab,
  setTrafficLightVariable: 0xc2,
} as const;

/** The response id of a get command. */
export const responseIdOf = (getCommandId: number): number => getCommandId + 0x10;

/** Variable ids used here, per domain. */
export const VARIABLE = {
  idList: 0x00,
  trafficLightState: 0x20,
  loopLastStepVehicleNumber: 0x10,
  loopVehicleData: 0x17,
  simulationTime: 0x66,
  deltaT: 0x7b,
  minExpectedNumber: 0x7d,
} as const;

/** Type tags of typed values. */
export const TYPE = {
  ubyte: 0x07,
  byte: 0x08,
  int: 0x09,
  double: 0x0b,
  string: 0x0c,
  stringList: 0x0e,
  compound: 0x0f,
} as const;

/** Status results: 0x00 success, 0x01 not implemented, 0xff failed. */
export const STATUS = { ok: 0x00, notImplemented: 0x01, failed: 0xff } as const;

/** A typed value as it travels: its tag, then its bytes. */
export type TraciValue =
  | { readonly type: "ubyte"; readonly value: number }
  | { readonly type: "byte"; readonly value: number }
  | { readonly type: "int"; readonly value: number }
  | { readonly type: "double"; readonly value: number }
  | { readonly type: "string"; readonly value: string }
  | { readonly type: "stringList"; readonly value: readonly string[] }
  | { readonly type: "compound"; readonly value: readonly TraciValue[] };

/** What a decoding error names: the command being answered and its object. */
export interface Context {
  readonly command: string;
  readonly objectId?: string;
}

/** Compounds nest (a compound of compounds); past this depth a reply is refused, not recursed into. */
const MAX_COMPOUND_DEPTH = 8;
/** The header of a message: its total length. */
export const MESSAGE_HEADER_BYTES = 4;

const malformed = (ctx: Context, what: string): TraciError =>
  new TraciError(`TraCI ${describeCommand(ctx.command, ctx.objectId)}: malformed message: ${what}`, {
    kind: "malformed",
    command: ctx.command,
    ...(ctx.objectId === undefined ? {} : { objectId: ctx.objectId }),
  });

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8");

/** Appends big-endian numbers and TraCI strings to a growing buffer. */
export class Writer {
  private bytes = new Uint8Array(64);
  private view = new DataView(this.bytes.buffer);
  private length = 0;

  private room(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
    this.view = new DataView(next.buffer);
  }

  ubyte(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`ubyte out of range: ${v}`);
    this.room(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
    return this;
  }

  byte(v: number): this {
    if (!Number.isInteger(v) || v < -0x80 || v > 0x7f) throw new RangeError(`byte out of range: ${v}`);
    this.room(1);
    this.view.setInt8(this.length, v);
    this.length += 1;
    return this;
  }

  int(v: number): this {
    if (!Number.isInteger(v) || v < -0x8000_0000 || v > 0x7fff_ffff)
      throw new RangeError(`int out of range: ${v}`);
    this.room(4);
    this.view.setInt32(this.length, v);
    this.length += 4;
    return this;
  }

  double(v: number): this {
    this.room(8);
    this.view.setFloat64(this.length, v);
    this.length += 8;
    return this;
  }

  raw(b: Uint8Array): this {
    this.room(b.length);
    this.bytes.set(b, this.length);
    this.length += b.length;
    return this;
  }

  /** A string: its byte length (int), then its bytes (UTF-8; ASCII ids are the same bytes). */
  string(s: string): this {
    const b = utf8.encode(s);
    return this.int(b.length).raw(b);
  }

  stringList(list: readonly string[]): this {
    this.int(list.length);
    for (const s of list) this.string(s);
    return this;
  }

  /** A typed value: its tag, then its bytes. */
  typed(v: TraciValue): this {
    this.ubyte(TYPE[v.type]);
    switch (v.type) {
      case "ubyte":
        return this.ubyte(v.value);
      case "byte":
        return this.byte(v.value);
      case "int":
        return this.int(v.value);
      case "double":
        return this.double(v.value);
      case "string":
        return this.string(v.value);
      case "stringList":
        return this.stringList(v.value);
      case "compound":
        this.int(v.value.length);
        for (const item of v.value) this.typed(item);
        return this;
    }
  }

  finish(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

/** Reads big-endian numbers and TraCI strings, refusing to read past the end (a truncated message). */
export class Reader {
  private offset = 0;
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    /** What errors name; a reply's reader moves it along the commands it answers. */
    public ctx: Context,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  private need(n: number, what: string): void {
    if (n > this.remaining)
      throw malformed(this.ctx, `${what} needs ${n} bytes at offset ${this.offset}, ${this.remaining} left`);
  }

  ubyte(): number {
    this.need(1, "a ubyte");
    return this.view.getUint8(this.offset++);
  }

  byte(): number {
    this.need(1, "a byte");
    return this.view.getInt8(this.offset++);
  }

  int(): number {
    this.need(4, "an int");
    const v = this.view.getInt32(this.offset);
    this.offset += 4;
    return v;
  }

  double(): number {
    this.need(8, "a double");
    const v = this.view.getFloat64(this.offset);
    this.offset += 8;
    return v;
  }

  bytesOf(n: number, what: string): Uint8Array {
    this.need(n, what);
    const b = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }

  string(): string {
    const n = this.int();
    if (n < 0) throw malformed(this.ctx, `a string of negative length ${n}`);
    return fromUtf8.decode(this.bytesOf(n, "a string"));
  }

  stringList(): string[] {
    const n = this.int();
    // Each string takes at least its 4-byte length: a count beyond that is a lie, not a reason to loop.
    if (n < 0 || n * 4 > this.remaining)
      throw malformed(this.ctx, `a string list of ${n} strings in ${this.remaining} bytes`);
    const list: string[] = [];
    for (let i = 0; i < n; i++) list.push(this.string());
    return list;
  }

  /** A typed value: its tag, then its bytes. */
  typed(depth = 0): TraciValue {
    const tag = this.ubyte();
    switch (tag) {
      case TYPE.ubyte:
        return { type: "ubyte", value: this.ubyte() };
      case TYPE.byte:
        return { type: "byte", value: this.byte() };
      case TYPE.int:
        return { type: "int", value: this.int() };
      case TYPE.double:
        return { type: "double", value: this.double() };
      case TYPE.string:
        return { type: "string", value: this.string() };
      case TYPE.stringList:
        return { type: "stringList", value: this.stringList() };
      case TYPE.compound: {
        if (depth >= MAX_COMPOUND_DEPTH) throw malformed(this.ctx, `compounds nested deeper than ${depth}`);
        const n = this.int();
        // Each item takes at least its tag and one byte.
        if (n < 0 || n * 2 > this.remaining)
          throw malformed(this.ctx, `a compound of ${n} items in ${this.remaining} bytes`);
        const items: TraciValue[] = [];
        for (let i = 0; i < n; i++) items.push(this.typed(depth + 1));
        return { type: "compound", value: items };
      }
      default:
        throw malformed(this.ctx, `unknown type tag 0x${hex(tag)} at offset ${this.offset - 1}`);
    }
  }

  /** Nothing may be left over: a reply longer than its content is as wrong as a short one. */
  end(what: string): void {
    if (this.remaining !== 0) throw malformed(this.ctx, `${this.remaining} unread bytes after ${what}`);
  }
}

const hex = (n: number): string => n.toString(16).padStart(2, "0");

// ---------------------------------------------------------------------------------------------------
// Framing

/** One command: its id and its content (the bytes after the id). */
export interface RawCommand {
  readonly id: number;
  readonly content: Uint8Array;
}

/** A command with the short (1-byte) length when it fits, the extended (0, then 4-byte) one otherwise. */
export function encodeCommand(id: number, content: Uint8Array): Uint8Array {
  const short = 2 + content.length;
  const w = new Writer();
  if (short <= 0xff) w.ubyte(short).ubyte(id);
  else
    w.ubyte(0)
      .int(6 + content.length)
      .ubyte(id);
  return w.raw(content).finish();
}

/** A message: the total length (4 bytes, counting itself), then the commands in order. */
export function encodeMessage(commands: readonly Uint8Array[]): Uint8Array {
  const total = MESSAGE_HEADER_BYTES + commands.reduce((n, c) => n + c.length, 0);
  const w = new Writer().int(total);
  for (const c of commands) w.raw(c);
  return w.finish();
}

/**
 * The total length a message announces in its first 4 bytes, checked against the bound before a byte
 * more is waited for (a bogus length must not make the reader buffer gigabytes).
 */
export function announcedLength(header: Uint8Array, maxBytes: number, ctx: Context): number {
  if (header.length < MESSAGE_HEADER_BYTES) throw malformed(ctx, "a message header of fewer than 4 bytes");
  const total = new DataView(header.buffer, header.byteOffset, MESSAGE_HEADER_BYTES).getInt32(0);
  if (total < MESSAGE_HEADER_BYTES) throw malformed(ctx, `a message announcing ${total} bytes`);
  if (total > maxBytes)
    throw new TraciError(
      `TraCI ${describeCommand(ctx.command, ctx.objectId)}: a message of ${total} bytes, over the ${maxBytes}-byte bound`,
      {
        kind: "too-large",
        command: ctx.command,
        ...(ctx.objectId === undefined ? {} : { objectId: ctx.objectId }),
      },
    );
  return total;
}

/** Reads one command (short or extended length) from `r`. */
export function readCommand(r: Reader): RawCommand {
  let length = r.ubyte();
  let header = 1;
  if (length === 0) {
    length = r.int();
    header = 5;
  }
  if (length < header + 1) throw malformed(r.ctx, `a command of length ${length}`);
  const id = r.ubyte();
  return { id, content: r.bytesOf(length - header - 1, `command 0x${hex(id)}`) };
}

/** The commands of a whole message (header included, exactly as long as it says): how requests travel. */
export function decodeMessage(message: Uint8Array, maxBytes: number, ctx: Context): RawCommand[] {
  const r = messageReader(message, maxBytes, ctx);
  const commands: RawCommand[] = [];
  while (r.remaining > 0) commands.push(readCommand(r));
  return commands;
}

/** A reader over a whole message's body, its announced length checked. */
function messageReader(message: Uint8Array, maxBytes: number, ctx: Context): Reader {
  const total = announcedLength(message, maxBytes, ctx);
  if (total !== message.length)
    throw malformed(ctx, `a message announcing ${total} bytes but ${message.length} given`);
  return new Reader(message.subarray(MESSAGE_HEADER_BYTES), ctx);
}

// ---------------------------------------------------------------------------------------------------
// Requests

export const getVersionCommand = (): Uint8Array => encodeCommand(COMMAND.getVersion, new Uint8Array(0));
export const closeCommand = (): Uint8Array => encodeCommand(COMMAND.close, new Uint8Array(0));
/** Simulation step: the target time in seconds, an untagged double (0: one step). */
export const simulationStepCommand = (targetTimeS: number): Uint8Array =>
  encodeCommand(COMMAND.simulationStep, new Writer().double(targetTimeS).finish());
/** Set order: the client's number, an untagged int. */
export const setOrderCommand = (order: number): Uint8Array =>
  encodeCommand(COMMAND.setOrder, new Writer().int(order).finish());

/** A get command: variable id, object id. */
export const getVariableCommand = (commandId: number, variable: number, objectId: string): Uint8Array =>
  encodeCommand(commandId, new Writer().ubyte(variable).string(objectId).finish());

/** A set command: variable id, object id, typed value. */
export const setVariableCommand = (
  commandId: number,
  variable: number,
  objectId: string,
  value: TraciValue,
): Uint8Array =>
  encodeCommand(commandId, new Writer().ubyte(variable).string(objectId).typed(value).finish());

// ---------------------------------------------------------------------------------------------------
// Replies

/**
 * What one command of a request expects back: its status, then a response command (its id), nothing
 * (null), or, after a simulation step, the subscription results: an untagged int count, then that many
 * commands (read and dropped: this client subscribes to nothing, another client might).
 */
export interface Expectation extends Context {
  readonly commandId: number;
  readonly responseId: number | null | "subscriptions";
}

export interface Status {
  readonly commandId: number;
  readonly result: number;
  readonly description: string;
}

/** A status command's content: result byte, description string. */
export function decodeStatus(command: RawCommand, ctx: Context): Status {
  const r = new Reader(command.content, ctx);
  const status = { commandId: command.id, result: r.ubyte(), description: r.string() };
  r.end("a status");
  return status;
}

/**
 * Checks a reply message against the commands it answers, in order: each one's status (an error status
 * is a `refused` TraciError naming that command and its object, with SUMO's description; SUMO sends no
 * response after it), then its response. Returns the response contents (null where there is none).
 * Every command's answer is checked before a refusal is thrown, so that the whole reply is read.
 */
export function decodeReply(
  message: Uint8Array,
  expected: readonly Expectation[],
  maxBytes: number,
): (Uint8Array | null)[] {
  const first = expected[0];
  if (first === undefined) throw new RangeError("decodeReply: no command expected");
  const r = messageReader(message, maxBytes, first);
  const results: (Uint8Array | null)[] = [];
  let refused: TraciError | null = null;
  for (const e of expected) {
    r.ctx = e; // errors from here on name this command
    if (r.remaining === 0) throw malformed(e, "the reply ends before this command's status");
    const statusCommand = readCommand(r);
    if (statusCommand.id !== e.commandId)
      throw malformed(
        e,
        `a status for command 0x${hex(statusCommand.id)} where 0x${hex(e.commandId)} was due`,
      );
    const status = decodeStatus(statusCommand, e);
    if (status.result !== STATUS.ok) {
      refused ??= refusal(e, status);
      results.push(null);
      continue;
    }
    if (e.responseId === null) {
      results.push(null);
    } else if (e.responseId === "subscriptions") {
      const n = r.int();
      // Each subscription result is a command of at least 2 bytes.
      if (n < 0 || n * 2 > r.remaining)
        throw malformed(e, `${n} subscription results announced in ${r.remaining} bytes`);
      for (let k = 0; k < n; k++) readCommand(r);
      results.push(null);
    } else {
      if (r.remaining === 0) throw malformed(e, "the reply ends before this command's response");
      const response = readCommand(r);
      if (response.id !== e.responseId)
        throw malformed(e, `a response 0x${hex(response.id)} where 0x${hex(e.responseId)} was due`);
      results.push(response.content);
    }
  }
  r.end("the last answer");
  if (refused !== null) throw refused;
  return results;
}

function refusal(e: Expectation, status: Status): TraciError {
  const why =
    status.result === STATUS.notImplemented
      ? "not implemented"
      : status.result === STATUS.failed
        ? "failed"
        : `status 0x${hex(status.result)}`;
  return new TraciError(
    `SUMO refused ${describeCommand(e.command, e.objectId)}: ${why}${status.description ? `: ${status.description}` : ""}`,
    { kind: "refused", command: e.command, ...(e.objectId === undefined ? {} : { objectId: e.objectId }) },
  );
}

/** A get response's content: the variable and object it answers (both checked), then the typed value. */
export function decodeVariableResponse(content: Uint8Array, variable: number, ctx: Context): TraciValue {
  const r = new Reader(content, ctx);
  const v = r.ubyte();
  if (v !== variable)
    throw malformed(ctx, `variable 0x${hex(v)} answered where 0x${hex(variable)} was asked`);
  const objectId = r.string();
  if (ctx.objectId !== undefined && objectId !== ctx.objectId)
    throw malformed(ctx, `an answer about '${objectId}'`);
  const value = r.typed();
  r.end("the value");
  return value;
}

/** Encodes a get response (what SUMO sends; for tests and fakes). */
export const variableResponseContent = (variable: number, objectId: string, value: TraciValue): Uint8Array =>
  new Writer().ubyte(variable).string(objectId).typed(value).finish();

/** Encodes a status command (what SUMO sends; for tests and fakes). */
export const statusCommand = (commandId: number, result: number, description: string): Uint8Array =>
  encodeCommand(commandId, new Writer().ubyte(result).string(description).finish());

/** The version response's content: the API version (untagged int) and SUMO's identifier (string). */
export function decodeVersion(content: Uint8Array, ctx: Context): { apiVersion: number; identifier: string } {
  const r = new Reader(content, ctx);
  const version = { apiVersion: r.int(), identifier: r.string() };
  r.end("the version");
  return version;
}

// ---------------------------------------------------------------------------------------------------
// Typed values as the commands return them

type TypeName = TraciValue["type"];
type ValueOf<T extends TypeName> = Extract<TraciValue, { type: T }>["value"];

export function expectType<T extends TypeName>(value: TraciValue, type: T, ctx: Context): ValueOf<T> {
  if (value.type !== type) throw malformed(ctx, `a ${value.type} where a ${type} was due`);
  return value.value as ValueOf<T>;
}

export interface VehicleData {
  readonly vehicleId: string;
  readonly lengthM: number;
  readonly entryTimeS: number;
  /** -1 while the vehicle is still on the loop. */
  readonly leaveTimeS: number;
  readonly typeId: string;
}

/**
 * An induction loop's last-step vehicle data: a compound whose first item is the number of packets (int),
 * then per vehicle: id (string), length (double), entry time (double), leave time (double), type (string).
 */
export function decodeVehicleData(value: TraciValue, ctx: Context): VehicleData[] {
  const items = expectType(value, "compound", ctx);
  const [head, ...rest] = items;
  if (head === undefined) throw malformed(ctx, "vehicle data without its packet count");
  const n = expectType(head, "int", ctx);
  if (n < 0 || rest.length !== n * 5)
    throw malformed(ctx, `vehicle data announcing ${n} packets in ${rest.length} items`);
  const out: VehicleData[] = [];
  for (let k = 0; k < n; k++) {
    const at = (j: number): TraciValue => rest[k * 5 + j] as TraciValue;
    out.push({
      vehicleId: expectType(at(0), "string", ctx),
      lengthM: expectType(at(1), "double", ctx),
      entryTimeS: expectType(at(2), "double", ctx),
      leaveTimeS: expectType(at(3), "double", ctx),
      typeId: expectType(at(4), "string", ctx),
    });
  }
  return out;
}
