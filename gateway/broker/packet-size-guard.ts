/**
 * Reads only the MQTT fixed headers of a byte stream (a control byte, then the remaining length in
 * 1–4 bytes of 7 bits each) and says when a packet declares more bytes than the broker accepts: the
 * connection is closed then, before the packet's body is buffered (the parser would otherwise hold a
 * 250 MB PUBLISH whole, only for the size check after it to refuse it). Pure: bytes in, a verdict out.
 */
export interface PacketGuardState {
  /** Reading a fixed header: bytes of the remaining length read so far (0: the control byte is next). */
  readonly phase: "control" | "length" | "body";
  readonly length: number;
  readonly multiplier: number;
  /** Body bytes still to skip. */
  readonly skip: number;
}

export const PACKET_GUARD_START: PacketGuardState = { phase: "control", length: 0, multiplier: 1, skip: 0 };

export type PacketGuardStep =
  | { readonly ok: true; readonly state: PacketGuardState }
  /** `declared`: the remaining length the packet announced (null: a malformed length, over 4 bytes). */
  | { readonly ok: false; readonly declared: number | null };

export function guardChunk(
  state: PacketGuardState,
  chunk: Uint8Array,
  maxPacketBytes: number,
): PacketGuardStep {
  let { phase, length, multiplier, skip } = state;
  let i = 0;
  while (i < chunk.length) {
    if (phase === "body") {
      const take = Math.min(skip, chunk.length - i);
      skip -= take;
      i += take;
      if (skip === 0) phase = "control";
      continue;
    }
    const byte = chunk[i++] as number;
    if (phase === "control") {
      phase = "length";
      length = 0;
      multiplier = 1;
      continue;
    }
    length += (byte & 0x7f) * multiplier;
    multiplier *= 128;
    if (byte & 0x80) {
      if (multiplier > 128 ** 3) return { ok: false, declared: null };
      continue;
    }
    if (length > maxPacketBytes) return { ok: false, declared: length };
    skip = length;
    phase = skip === 0 ? "control" : "body";
  }
  return { ok: true, state: { phase, length, multiplier, skip } };
}
