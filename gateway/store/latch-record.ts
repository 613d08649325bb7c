import { createHash } from "node:crypto";
import * as nodeFs from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import type { FaultKind, FaultLatch } from "../core/monitor.js";
import { StoreError } from "./errors.js";

/**
 * The latch record: a second copy of the latched fault, kept beside the SQLite store in a small file of
 * its own, so that a latch survives a store that is lost, emptied or cannot grow.
 *
 * Why this shape:
 * - **Preallocated, written in place.** The file is created once at its full size with real bytes (no
 *   sparse holes), then only ever overwritten at the same offsets (pwrite + fdatasync). Overwriting
 *   blocks a file already owns needs no new blocks, so a latch can still be stored on a full disk, where
 *   SQLite cannot append to its WAL. (On a copy-on-write filesystem, btrfs or ZFS, an overwrite does need
 *   new blocks: there the write fails on a full disk, the store says so and the gateway stays in flash.)
 * - **Two slots (A, B), each with a sequence number and a SHA-256.** A write goes to the slot that does
 *   not hold the newest valid state, so a write torn by a power cut leaves the other slot intact: the
 *   reader takes the valid slot with the highest sequence number.
 * - **Its existence proves that this gateway has run before.** A store found missing or empty beside
 *   it is a lost store, not a first start.
 */

export const LATCH_RECORD_FILE = "latch.rec";
/** One filesystem block: both slots live in blocks the file owns from its creation on. */
export const RECORD_SIZE = 4096;
const SLOT_SIZE = RECORD_SIZE / 2;
const MAGIC = Buffer.from("GWLATCH1", "ascii");
const LENGTH_BYTES = 4;
const CHECKSUM_BYTES = 32;
const HEADER_BYTES = MAGIC.length + LENGTH_BYTES + CHECKSUM_BYTES;
/** Room for the JSON payload of one slot. */
const PAYLOAD_CAPACITY = SLOT_SIZE - HEADER_BYTES;
const SLOT_NAMES = ["A", "B"] as const;
export type SlotName = (typeof SLOT_NAMES)[number];

/**
 * The few file operations the record needs, with node:fs's signatures: the seam through which a test
 * injects ENOSPC or EIO into the record's writes (the SQLite store is never mocked).
 */
export interface RecordFs {
  openSync(path: string, flags: string): number;
  closeSync(fd: number): void;
  readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  fdatasyncSync(fd: number): void;
  fsyncSync(fd: number): void;
  renameSync(from: string, to: string): void;
  rmSync(path: string, options: { force: boolean }): void;
}

export const nodeRecordFs: RecordFs = nodeFs;

/** What one copy of the latch says. */
export interface RecordState {
  /** The store this record belongs to (also kept in the database): a replaced database does not match. */
  readonly storeId: string;
  readonly latch: FaultLatch | null;
  /** Who cleared the last latch, and when; null while latched or when never cleared. */
  readonly cleared: { readonly by: string; readonly atWallMs: number } | null;
}

export type RecordReading =
  | { readonly status: "missing" }
  | { readonly status: "unreadable"; readonly problem: string }
  | {
      readonly status: "ok";
      readonly seq: number;
      readonly slot: SlotName;
      readonly state: RecordState;
      /** The other slot: its sequence number when valid, else why it is not. */
      readonly otherSlot: { readonly seq: number } | { readonly problem: string };
    };

const payloadSchema = z.strictObject({
  v: z.literal(1),
  seq: z.number().int().min(0),
  storeId: z.string().min(1).max(100),
  latch: z
    .strictObject({
      kind: z.string().min(1).max(100),
      message: z.string(),
      groups: z.array(z.string()),
      atWallMs: z.number(),
    })
    .nullable(),
  cleared: z.strictObject({ by: z.string(), atWallMs: z.number() }).nullable(),
});

type SlotContent = { readonly ok: true; readonly seq: number; readonly state: RecordState } | BadSlot;
interface BadSlot {
  readonly ok: false;
  readonly problem: string;
}

/** One latch record file: read it, create it, or overwrite one slot in place. */
export class LatchRecordFile {
  /**
   * The slot whose last write failed, if any. After a failed fdatasync the page cache may show data
   * the disk does not hold (Linux marks the pages clean anyway), so a re-read cannot be trusted to say
   * that slot is good: the next write goes to that same slot again and never over the other one,
   * which holds the last state known to be on disk.
   */
  private suspectSlot: number | null = null;
  /** The highest sequence number written or attempted: a retry never reuses one. */
  private lastSeq = 0;

  constructor(
    readonly file: string,
    private readonly fs: RecordFs = nodeRecordFs,
  ) {}

  read(): RecordReading {
    let bytes: Buffer;
    try {
      const read = this.readBytes();
      if (read === null) return { status: "missing" };
      bytes = read;
    } catch (error) {
      return { status: "unreadable", problem: `cannot read it: ${describe(error)}` };
    }
    const slots = [0, 1].map((index) =>
      decodeSlot(bytes.subarray(index * SLOT_SIZE, (index + 1) * SLOT_SIZE)),
    );
    const newest = newestValidSlot(slots);
    if (newest === null) {
      const problems = slots.map((slot, i) => `slot ${SLOT_NAMES[i]}: ${(slot as BadSlot).problem}`);
      return { status: "unreadable", problem: `no valid slot (${problems.join("; ")})` };
    }
    const chosen = slots[newest] as { seq: number; state: RecordState };
    const other = slots[1 - newest] as SlotContent;
    return {
      status: "ok",
      seq: chosen.seq,
      slot: SLOT_NAMES[newest] as SlotName,
      state: chosen.state,
      otherSlot: other.ok ? { seq: other.seq } : { problem: other.problem },
    };
  }

  /** The whole file, zero-filled past its end when it is short; null when it does not exist. */
  private readBytes(): Buffer | null {
    let fd: number;
    try {
      fd = this.fs.openSync(this.file, "r");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw error;
    }
    try {
      const bytes = Buffer.alloc(RECORD_SIZE);
      let filled = 0;
      while (filled < RECORD_SIZE) {
        const n = this.fs.readSync(fd, bytes, filled, RECORD_SIZE - filled, filled);
        if (n === 0) break;
        filled += n;
      }
      return bytes;
    } finally {
      this.fs.closeSync(fd);
    }
  }

  /**
   * Creates the record at its full size, both slots holding `state`, atomically: written to a
   * temporary file, fsynced (size and block allocation included), renamed over the name, then the
   * directory fsynced so that the name itself survives a power cut. A half-created record therefore
   * never exists under its name. Needs new blocks: it fails on a full disk, and says so.
   */
  create(state: RecordState): void {
    const seq = this.lastSeq + 1;
    const slot = encodeSlot(seq, state);
    const temporary = `${this.file}.new`;
    try {
      this.fs.rmSync(temporary, { force: true });
      const fd = this.fs.openSync(temporary, "wx");
      try {
        writeFully(this.fs, fd, Buffer.concat([slot, slot]), 0);
        this.fs.fsyncSync(fd);
      } finally {
        this.fs.closeSync(fd);
      }
      this.fs.renameSync(temporary, this.file);
      this.syncDirectory();
    } catch (error) {
      this.removeQuietly(temporary);
      throw new StoreError(`cannot create the latch record ${this.file}: ${describe(error)}`);
    }
    this.lastSeq = seq;
    this.suspectSlot = null;
  }

  /**
   * Stores `state` in place, in the slot that does not hold the newest valid state (see suspectSlot),
   * and returns once fdatasync did: the slot's blocks already exist, so only data needs syncing.
   * A missing record is created again (which needs free space).
   */
  write(state: RecordState): void {
    const current = this.read();
    if (current.status === "missing") {
      this.create(state);
      return;
    }
    const target = this.targetSlot(current);
    const seq = Math.max(this.lastSeq, current.status === "ok" ? current.seq : 0) + 1;
    this.lastSeq = seq;
    try {
      const fd = this.fs.openSync(this.file, "r+");
      try {
        writeFully(this.fs, fd, encodeSlot(seq, state), target * SLOT_SIZE);
        this.fs.fdatasyncSync(fd);
      } finally {
        this.fs.closeSync(fd);
      }
    } catch (error) {
      this.suspectSlot = target;
      throw new StoreError(
        `cannot write the latch record ${this.file} (slot ${SLOT_NAMES[target]}): ${describe(error)}`,
      );
    }
    this.suspectSlot = null;
  }

  private targetSlot(current: RecordReading): number {
    if (this.suspectSlot !== null) return this.suspectSlot;
    if (current.status !== "ok") return 0;
    return current.slot === "A" ? 1 : 0;
  }

  private syncDirectory(): void {
    const fd = this.fs.openSync(dirname(this.file), "r");
    try {
      this.fs.fsyncSync(fd);
    } finally {
      this.fs.closeSync(fd);
    }
  }

  private removeQuietly(path: string): void {
    try {
      this.fs.rmSync(path, { force: true });
    } catch {
      // what matters is the error that brought us here
    }
  }
}

function writeFully(fs: RecordFs, fd: number, bytes: Buffer, position: number): void {
  let written = 0;
  while (written < bytes.length) {
    written += fs.writeSync(fd, bytes, written, bytes.length - written, position + written);
  }
}

/** The index of the valid slot with the higher sequence number (A on a tie: both were written at creation). */
function newestValidSlot(slots: readonly SlotContent[]): number | null {
  const [a, b] = slots as [SlotContent, SlotContent];
  if (a.ok && b.ok) return b.seq > a.seq ? 1 : 0;
  if (a.ok) return 0;
  if (b.ok) return 1;
  return null;
}

function checksum(lengthAndPayload: Buffer): Buffer {
  return createHash("sha256").update(lengthAndPayload).digest();
}

/** One slot: magic, payload length (u32 LE), SHA-256 of length and payload, the JSON payload, zeros. */
export function encodeSlot(seq: number, state: RecordState): Buffer {
  const payload = Buffer.from(JSON.stringify(payloadOf(seq, fitted(state))), "utf8");
  const length = Buffer.alloc(LENGTH_BYTES);
  length.writeUInt32LE(payload.length);
  const slot = Buffer.alloc(SLOT_SIZE);
  MAGIC.copy(slot, 0);
  length.copy(slot, MAGIC.length);
  checksum(Buffer.concat([length, payload])).copy(slot, MAGIC.length + LENGTH_BYTES);
  payload.copy(slot, HEADER_BYTES);
  return slot;
}

function payloadOf(seq: number, state: RecordState): z.infer<typeof payloadSchema> {
  return {
    v: 1,
    seq,
    storeId: state.storeId,
    latch: state.latch ? { ...state.latch, groups: [...state.latch.groups] } : null,
    cleared: state.cleared,
  };
}

/**
 * The state, shortened until it fits in a slot: a latch is never refused for its size. The kind and
 * the instant always fit; a long message, group list or operator name is cut (the kind comes first).
 */
function fitted(state: RecordState): RecordState {
  const fits = (candidate: RecordState) =>
    Buffer.byteLength(JSON.stringify(payloadOf(Number.MAX_SAFE_INTEGER, candidate)), "utf8") <=
    PAYLOAD_CAPACITY;
  if (fits(state)) return state;
  for (let room = 1024; room > 0; room = Math.floor(room / 2)) {
    const candidate = shortened(state, room);
    if (fits(candidate)) return candidate;
  }
  return shortened(state, 0);
}

function shortened(state: RecordState, room: number): RecordState {
  const cut = (text: string, length: number) => (text.length > length ? `${text.slice(0, length)}…` : text);
  return {
    storeId: state.storeId,
    latch: state.latch && {
      ...state.latch,
      message: cut(state.latch.message, room),
      groups: state.latch.groups.slice(0, Math.floor(room / 32)).map((group) => cut(group, 24)),
    },
    cleared: state.cleared && { ...state.cleared, by: cut(state.cleared.by, Math.min(room, 100)) },
  };
}

export function decodeSlot(slot: Buffer): SlotContent {
  if (slot.length < HEADER_BYTES) return { ok: false, problem: "missing (the file is too short)" };
  if (slot.every((byte) => byte === 0)) return { ok: false, problem: "empty (all zeros)" };
  if (!slot.subarray(0, MAGIC.length).equals(MAGIC))
    return { ok: false, problem: "not a latch slot (bad magic)" };
  const length = slot.readUInt32LE(MAGIC.length);
  if (length > PAYLOAD_CAPACITY) return { ok: false, problem: `bad length ${length}` };
  const lengthAndPayload = Buffer.concat([
    slot.subarray(MAGIC.length, MAGIC.length + LENGTH_BYTES),
    slot.subarray(HEADER_BYTES, HEADER_BYTES + length),
  ]);
  const stored = slot.subarray(MAGIC.length + LENGTH_BYTES, HEADER_BYTES);
  if (!checksum(lengthAndPayload).equals(stored))
    return { ok: false, problem: "checksum mismatch (torn or corrupt)" };
  let parsed: z.infer<typeof payloadSchema>;
  try {
    parsed = payloadSchema.parse(
      JSON.parse(slot.subarray(HEADER_BYTES, HEADER_BYTES + length).toString("utf8")),
    );
  } catch (error) {
    return { ok: false, problem: `invalid content: ${describe(error).slice(0, 200)}` };
  }
  return {
    ok: true,
    seq: parsed.seq,
    state: {
      storeId: parsed.storeId,
      // A kind this version does not know (a newer greenwave's) still latches: it is kept as written.
      latch: parsed.latch ? { ...parsed.latch, kind: parsed.latch.kind as FaultKind } : null,
      cleared: parsed.cleared,
    },
  };
}

function describe(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const message = error instanceof Error ? error.message : String(error);
  return code && !message.startsWith(code) ? `${code}: ${message}` : message;
}
