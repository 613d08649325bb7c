import { crc16, decodeRequest, standInException } from "../../devices/modbus/answer-check.js";

/**
 * A module that lacks some holding registers: requests that touch one of them (read FC03, write FC06
 * or FC16) are answered with exception 02 ILLEGAL DATA ADDRESS, as a real module answers for an
 * address it does not have. This is how a module of another make answers a profile's watchdog
 * registers (`greenwave doctor` must name the register and the profile, not report a dead module).
 */

/** Modbus exception 02: the address is not an allowable address on this device. */
export const ILLEGAL_DATA_ADDRESS = 0x02;

const HOLDING_REGISTER_FUNCTIONS = new Set([0x03, 0x06, 0x10]);

/**
 * The exception answer to `data` when it is one whole request for a rejected register, else null
 * (pass it on). Only a chunk that is exactly one request is looked at: over TCP every request of the
 * gateway and the doctor arrives so (one request at a time per connection); over RTU at the rates the
 * tests use too. A chunk that is not one whole frame is passed on untouched, as before.
 */
export function registerRefusal(
  framing: "tcp" | "rtu",
  data: Uint8Array,
  rejected: ReadonlySet<number>,
): Buffer | null {
  if (rejected.size === 0 || !isWholeFrame(framing, data)) return null;
  const request = decodeRequest(framing, data);
  const fc = request.pdu[0] ?? 0;
  if (!HOLDING_REGISTER_FUNCTIONS.has(fc) || request.pdu.length < 5) return null;
  const first = u16(request.pdu, 1);
  const count = fc === 0x06 ? 1 : u16(request.pdu, 3);
  for (let address = first; address < first + count; address++)
    if (rejected.has(address)) return standInException(request, ILLEGAL_DATA_ADDRESS);
  return null;
}

function isWholeFrame(framing: "tcp" | "rtu", data: Uint8Array): boolean {
  if (framing === "tcp") return data.length >= 8 && u16(data, 4) + 6 === data.length;
  if (data.length < 4) return false;
  const crc = crc16(data.subarray(0, data.length - 2));
  return (data[data.length - 2] ?? 0) === (crc & 0xff) && (data[data.length - 1] ?? 0) === crc >> 8;
}

function u16(bytes: Uint8Array, at: number): number {
  return ((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0);
}
