import type { PreparedTxn } from "../../gateway/core/corridor/participant.js";
import type { PlanInForceRef, StoredTxn } from "../../gateway/core/corridor/resume.js";
import type { SeededRandom } from "./random.js";

/** What a gateway's store holds, as far as the corridor protocol and the plan in force go. */
export interface DiskState {
  epoch: number;
  highestToken: number;
  /** By transaction id; `order` is the store's (updated time, row) order. */
  txns: Map<string, StoredTxn & { order: number }>;
  planInForce: PlanInForceRef | null;
}

type Write = (disk: DiskState) => void;

function copy(d: DiskState): DiskState {
  return { ...d, txns: new Map(d.txns) };
}

/**
 * A store that survives a crash the way SQLite in WAL mode does: writes are applied in order; a forced
 * write makes itself and every write before it durable; a crash keeps the durable state plus some
 * prefix of the writes since the last forced one (the seeded random picks how much).
 */
export class SimDisk {
  private durable: DiskState = { epoch: 0, highestToken: 0, txns: new Map(), planInForce: null };
  private unsynced: Write[] = [];
  /** What the running gateway reads. */
  live: DiskState = copy(this.durable);
  private order = 0;

  write(forced: boolean, change: Write): void {
    change(this.live);
    this.unsynced.push(change);
    if (forced) {
      for (const w of this.unsynced) w(this.durable);
      this.unsynced = [];
    }
  }

  crash(random: SeededRandom): number {
    const kept = random.int(0, this.unsynced.length);
    for (const w of this.unsynced.slice(0, kept)) w(this.durable);
    const lost = this.unsynced.length - kept;
    this.unsynced = [];
    this.live = copy(this.durable);
    return lost;
  }

  /**
   * A clean shutdown: the store is closed and the process exits while the machine stays up, so every
   * write it made is kept (SQLite's WAL holds each committed transaction once the process wrote it).
   */
  close(): void {
    for (const w of this.unsynced) w(this.durable);
    this.unsynced = [];
    this.live = copy(this.durable);
  }

  nextOrder(): number {
    return ++this.order;
  }

  /** The store's transactions, newest first. */
  newestFirst(): StoredTxn[] {
    return [...this.live.txns.values()].sort((a, b) => b.order - a.order);
  }

  prepared(): PreparedTxn | null {
    return this.newestFirst().find((t) => t.phase === "prepared")?.txn ?? null;
  }
}
