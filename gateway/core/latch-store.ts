import type { FaultLatch } from "./monitor.js";

/**
 * Where a latched fault is kept so that it survives a restart: only an operator reset clears it.
 * A port of the core, so that the shell (which uses it) and the store (which implements it) both
 * depend on the core and not on each other. The gateway's store (gateway/store) implements it with
 * two copies: the SQLite database and a small preallocated latch record beside it
 * (gateway/store/durable-latch.ts); gateway/shell/latch-store.ts has one in memory.
 */
export interface LatchStore {
  load(): FaultLatch | null;
  /**
   * Must be durable when it returns. Throws (a StoreError) when it could not store the latch in every
   * copy: the caller keeps the latch in memory, and the intersection in flash, and reports it;
   * `latchDurability` then says whether a restart would still find it.
   */
  save(latch: FaultLatch): void;
  clear(by: string): void;
  /** How safely the latch state in force is stored; absent for a store that keeps nothing across a restart. */
  readonly latchDurability?: LatchDurability;
}

export type LatchCopy = "record" | "database";

export interface LatchDurability {
  /**
   * False only when a restart would come up without the fault in force: it is stored in no copy.
   * Report it ("fault latched but NOT durable") and keep the intersection in flash.
   */
  readonly durable: boolean;
  /** The copies that hold the latch state in force (both, normally). */
  readonly copies: readonly LatchCopy[];
  /** What went wrong with the last latch write or the start-up repair, naming the file; null when all is well. */
  readonly problem: string | null;
}
