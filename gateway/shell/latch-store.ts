import type { FaultLatch } from "../core/monitor.js";
import type { LatchStore } from "../core/latch-store.js";

/** A latch store that keeps nothing across a restart: for tests. */
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
