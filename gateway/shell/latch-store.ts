import type { FaultLatch } from "../core/monitor.js";

/**
 * Where a latched fault is kept so that it survives a restart: only an operator reset clears it.
 * The gateway's SQLite store (gateway/store) implements it.
 */
export interface LatchStore {
  load(): FaultLatch | null;
  /** Must be durable when it returns. */
  save(latch: FaultLatch): void;
  clear(by: string): void;
}

export class MemoryLatchStore implements LatchStore {
  private latch: FaultLatch | null = null;
  load(): FaultLatch | null {
    return this.latch;
  }
  save(latch: FaultLatch): void {
    this.latch = latch;
  }
  clear(): void {
    this.latch = null;
  }
}
