/**
 * Is this answer an answer to that request? Pure checks on raw frames, so that garbage from a device
 * that is not a Modbus slave (an echo service, a web server, a misrouted port) never reaches the
 * conflict monitor as lamp feedback.
 *
 * What jsmodbus 5 already checks, and what it does not (read in node_modules/jsmodbus/dist):
 * - TCP transaction id and protocol id: checked, but both reported as "OutOfSync … fc does not match",
 *   and a late answer to an earlier request is not told apart from a stranger's frame;
 * - TCP unit id: a frame from another unit is dropped silently (the request then times out);
 * - function code: checked for normal answers, not for exceptions (an exception for another function
 *   is taken as the device's answer);
 * - byte count against the quantity asked for, PDU length against the MBAP length, and the echo of
 *   address and quantity in a write answer: not checked. An echo of a read request parses as an answer
 *   with no data, which the output stage took for "every lamp dark";
 * - an unknown function code or a byte count past the end of the frame leaves the frame in its
 *   receive buffer for ever, and every later answer behind it.
 * So every check is made here, before jsmodbus sees a byte (see answer-guard.ts).
 */

export type Framing = "tcp" | "rtu";

/** The functions the gateway sends, with what their answer must look like. */
const READ_BITS = new Set([0x01, 0x02]);
const READ_REGISTERS = new Set([0x03, 0x04]);
const WRITE_SINGLE = new Set([0x05, 0x06]);
const WRITE_MULTIPLE = new Set([0x0f, 0x10]);

/** MBAP header: transaction id, protocol id, length, unit id. */
const MBAP_BYTES = 7;
/** The MBAP length counts the unit id and the PDU; a PDU is 1 to 253 bytes (Modbus application protocol 4.1). */
const MBAP_LENGTH_MIN = 2;
const MBAP_LENGTH_MAX = 254;
/** The longest Modbus frame on either framing: 260 bytes over TCP, 256 over RTU. */
export const MAX_ANSWER_BYTES = 260;

/** A request as sent on the wire, decoded once. Our own frames: trusted. */
export interface SentRequest {
  readonly framing: Framing;
  readonly frame: Uint8Array;
  readonly unitId: number;
  /** TCP only. */
  readonly transactionId: number | null;
  readonly pdu: Uint8Array;
}

export function decodeRequest(framing: Framing, frame: Uint8Array): SentRequest {
  if (framing === "tcp") {
    return {
      framing,
      frame,
      unitId: frame[6] ?? 0,
      transactionId: u16(frame, 0),
      pdu: frame.subarray(MBAP_BYTES),
    };
  }
  return { framing, frame, unitId: frame[0] ?? 0, transactionId: null, pdu: frame.subarray(1, -2) };
}

export type AnswerVerdict =
  /** Not enough bytes yet to decide. */
  | { readonly kind: "incomplete" }
  /** The first `length` bytes are a well-formed answer to the request (possibly a Modbus exception). */
  | { readonly kind: "valid"; readonly length: number }
  /** TCP: a whole frame answering an earlier request of ours (it came after its timeout): skip it. */
  | { readonly kind: "late"; readonly length: number; readonly transactionId: number }
  /** RTU: a frame whose CRC fails: line noise, not a verdict on the device. */
  | { readonly kind: "crc"; readonly length: number }
  /** Not an answer to this request. */
  | { readonly kind: "invalid"; readonly reason: string };

/**
 * Checks the bytes received so far against the request. `wasSent(unitId, transactionId)` says whether
 * an earlier request of ours carried that transaction id (a late answer, not garbage).
 */
export function checkAnswer(
  request: SentRequest,
  received: Uint8Array,
  wasSent: (unitId: number, transactionId: number) => boolean = () => false,
): AnswerVerdict {
  if (received.length > MAX_ANSWER_BYTES)
    return invalid(`ran to ${received.length} bytes without completing (a Modbus frame is at most 260)`);
  return request.framing === "tcp" ? checkTcp(request, received, wasSent) : checkRtu(request, received);
}

function checkTcp(
  request: SentRequest,
  received: Uint8Array,
  wasSent: (unitId: number, transactionId: number) => boolean,
): AnswerVerdict {
  if (received.length < MBAP_BYTES) return { kind: "incomplete" };
  const protocolId = u16(received, 2);
  if (protocolId !== 0)
    return invalid(`had protocol id ${protocolId} in its MBAP header (Modbus is 0)`, received);
  const length = u16(received, 4);
  if (length < MBAP_LENGTH_MIN || length > MBAP_LENGTH_MAX)
    return invalid(`had MBAP length ${length}, outside ${MBAP_LENGTH_MIN}–${MBAP_LENGTH_MAX}`, received);
  const frameLength = 6 + length;
  if (received.length < frameLength) return { kind: "incomplete" };
  const frame = received.subarray(0, frameLength);
  const transactionId = u16(frame, 0);
  const unitId = frame[6] as number;
  if (transactionId !== request.transactionId) {
    if (wasSent(unitId, transactionId)) return { kind: "late", length: frameLength, transactionId };
    return invalid(
      `had transaction id ${transactionId}, which answers no request of ours (this one was ${request.transactionId})`,
      frame,
    );
  }
  if (unitId !== request.unitId)
    return invalid(`came from unit ${unitId}, not unit ${request.unitId}`, frame);
  const problem = checkPdu(request.pdu, frame.subarray(MBAP_BYTES));
  if (problem) return invalid(echoed(request, frame) ? "echoed the request" : problem, frame);
  return { kind: "valid", length: frameLength };
}

function checkRtu(request: SentRequest, received: Uint8Array): AnswerVerdict {
  // A half-duplex adapter with local echo, or a loop-back, returns our own request: say so rather
  // than report the CRC or function-code error it would otherwise make.
  if (!WRITE_SINGLE.has(request.pdu[0] as number) && isPrefixOf(received, request.frame)) {
    return received.length === request.frame.length
      ? invalid("echoed the request", received)
      : { kind: "incomplete" };
  }
  const length = rtuFrameLength(received);
  // An unknown function code gives no frame length, so no CRC to tell line noise from garbage: wait,
  // and let the timeout report the bytes.
  if (length === "unknown" || length === "more" || received.length < length) return { kind: "incomplete" };
  const frame = received.subarray(0, length);
  if (
    crc16(frame.subarray(0, length - 2)) !==
    (frame[length - 2] as number) + 256 * (frame[length - 1] as number)
  )
    return { kind: "crc", length };
  const unitId = frame[0] as number;
  if (unitId !== request.unitId)
    return invalid(`came from unit ${unitId}, not unit ${request.unitId}`, frame);
  const problem = checkPdu(request.pdu, frame.subarray(1, length - 2));
  if (problem) return invalid(problem, frame);
  return { kind: "valid", length };
}

/**
 * The length of an RTU frame from its header; "more" while the header is incomplete, "unknown" when
 * its function code is not one the gateway sends.
 */
function rtuFrameLength(received: Uint8Array): number | "more" | "unknown" {
  const fc = received[1];
  if (fc === undefined) return "more";
  if (fc & 0x80) return 5; // unit, function | 0x80, exception code, CRC
  if (READ_BITS.has(fc) || READ_REGISTERS.has(fc)) {
    const byteCount = received[2];
    return byteCount === undefined ? "more" : 5 + byteCount; // unit, function, byte count, data, CRC
  }
  if (WRITE_SINGLE.has(fc) || WRITE_MULTIPLE.has(fc)) return 8; // unit, function, 2 + 2, CRC
  return "unknown";
}

/**
 * What is wrong with this answer PDU for that request PDU, phrased to follow "the answer" ("had byte
 * count 2 where 32 bits need 4"), or null when nothing is.
 */
export function checkPdu(request: Uint8Array, answer: Uint8Array): string | null {
  const asked = request[0] as number;
  const fc = answer[0];
  if (fc === undefined) return "was empty";
  if (fc === (asked | 0x80)) {
    return answer.length === 2
      ? null
      : `was an exception of ${answer.length} bytes (an exception is 2: function code and exception code)`;
  }
  if (fc !== asked) {
    return fc & 0x80
      ? `was an exception for function code ${hexByte(fc & 0x7f)}, not ${hexByte(asked)}`
      : `had function code ${hexByte(fc)}, not ${hexByte(asked)}`;
  }
  if (READ_BITS.has(asked) || READ_REGISTERS.has(asked)) return checkReadAnswer(request, answer);
  if (WRITE_SINGLE.has(asked)) {
    return answer.length === 5 && sameBytes(answer, request.subarray(0, 5))
      ? null
      : "did not echo the address and value written";
  }
  if (WRITE_MULTIPLE.has(asked)) return checkWriteMultipleAnswer(request, answer);
  return `answered function code ${hexByte(asked)}, which the gateway never sends`;
}

function checkReadAnswer(request: Uint8Array, answer: Uint8Array): string | null {
  const quantity = u16(request, 3);
  const bits = READ_BITS.has(request[0] as number);
  const expected = bits ? Math.ceil(quantity / 8) : 2 * quantity;
  const byteCount = answer[1];
  if (byteCount === undefined) return "had no byte count";
  if (byteCount !== expected) {
    const what = bits ? `${quantity} bits need ${expected}` : `${quantity} registers need ${expected}`;
    return `had byte count ${byteCount} where ${what}`;
  }
  if (answer.length !== 2 + byteCount)
    return `was ${answer.length} bytes long where byte count ${byteCount} makes ${2 + byteCount}`;
  return null;
}

function checkWriteMultipleAnswer(request: Uint8Array, answer: Uint8Array): string | null {
  if (answer.length !== 5)
    return `was ${answer.length} bytes long (a write answer is 5: function, address, quantity)`;
  const address = u16(answer, 1);
  const quantity = u16(answer, 3);
  if (address !== u16(request, 1)) return `named address ${address}, not ${u16(request, 1)}`;
  if (quantity !== u16(request, 3)) return `named ${quantity} values, not ${u16(request, 3)}`;
  return null;
}

/** A frame the device sent back unchanged, byte for byte. */
function echoed(request: SentRequest, frame: Uint8Array): boolean {
  return sameBytes(frame, request.frame);
}

function invalid(reason: string, frame?: Uint8Array): AnswerVerdict {
  return { kind: "invalid", reason: frame ? `${reason}: ${hex(frame)}` : reason };
}

/** CRC-16/MODBUS (polynomial 0xA001 reflected, initial 0xFFFF), as sent low byte first. */
export function crc16(bytes: Uint8Array): number {
  let crc = 0xffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

/**
 * A stand-in exception answer to the request: how the guard ends a jsmodbus request at once (jsmodbus
 * has no way to abort one before its timer; its manual reject leaves the request current).
 */
export function standInException(request: SentRequest, exceptionCode: number): Buffer {
  const pdu = [(request.pdu[0] as number) | 0x80, exceptionCode];
  if (request.framing === "tcp") {
    const id = request.transactionId ?? 0;
    return Buffer.from([id >> 8, id & 0xff, 0, 0, 0, 1 + pdu.length, request.unitId, ...pdu]);
  }
  const body = Buffer.from([request.unitId, ...pdu]);
  const crc = crc16(body);
  return Buffer.concat([body, Buffer.from([crc & 0xff, crc >> 8])]);
}

/** At most this many bytes of a frame go into a message. */
const HEX_SHOWN = 16;

export function hex(bytes: Uint8Array): string {
  const shown = Array.from(bytes.subarray(0, HEX_SHOWN), (b) => b.toString(16).padStart(2, "0")).join(" ");
  return bytes.length > HEX_SHOWN ? `${shown} … (${bytes.length} bytes)` : shown;
}

function hexByte(b: number): string {
  return `0x${b.toString(16).padStart(2, "0")}`;
}

function u16(bytes: Uint8Array, at: number): number {
  return ((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function isPrefixOf(part: Uint8Array, whole: Uint8Array): boolean {
  return part.length > 0 && part.length <= whole.length && part.every((byte, i) => byte === whole[i]);
}
