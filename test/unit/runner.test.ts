import { describe, expect, it } from "vitest";
import { loadIntersectionSetup } from "../../gateway/config/load.js";
import type { FaultLatch } from "../../gateway/core/monitor.js";
import { systemClock } from "../../gateway/shell/clock.js";
import { IntersectionRunner, LATCH_RETRY_MS } from "../../gateway/shell/intersection-runner.js";
import type { LatchStore } from "../../gateway/core/latch-store.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";

const elm = loadIntersectionSetup("config/intersections/elm.yaml");

/** A latch store whose writes fail while `full` is set: the disk-full case, injected. */
class FailingLatchStore implements LatchStore {
  full = true;
  stored: FaultLatch | null = null;
  attempts = 0;
  load(): FaultLatch | null {
    return this.stored;
  }
  save(latch: FaultLatch): void {
    this.attempts++;
    if (this.full) throw new Error("SQLITE_FULL: database or disk is full");
    this.stored = latch;
  }
  clear(): void {
    this.stored = null;
  }
}

describe("the intersection runner", () => {
  it(
    "keeps a latch it cannot store in flash, says it is not durable, and stores it once the disk has room",
    { timeout: 20_000 },
    async () => {
      const store = new FailingLatchStore();
      const errors: string[] = [];
      const runner = new IntersectionRunner(
        elm.intersection.intersection,
        elm.initialPlan,
        systemClock,
        store,
        { onStoreError: (message) => errors.push(message) },
        50,
      );
      runner.start();
      runner.dispatch({ type: "device-lost", device: "io1", detail: "no answer" });
      expect(runner.mode).toBe("fault");
      expect(runner.latchDurable).toBe(false);
      expect(errors[0]).toContain("cannot store the latched fault");
      expect(errors[0]).toContain("a restart now would lose the latch");
      store.full = false;
      await until("the latch stored on a retry", LATCH_RETRY_MS * 2, () => runner.latchDurable);
      expect(store.stored?.kind).toBe("device-lost");
      expect(runner.mode).toBe("fault");
      await runner.stop();
    },
  );

  it("counts the ticks a slow exchange makes it miss", { timeout: 20_000 }, async () => {
    let missed = 0;
    let ticks = 0;
    const runner = new IntersectionRunner(
      elm.intersection.intersection,
      elm.initialPlan,
      systemClock,
      new FailingLatchStore(),
      {
        // A module answering in 150 ms against a 50 ms tick: every tick misses at least two slots.
        exchange: async () => {
          await new Promise((resolve) => setTimeout(resolve, 150));
          return { observed: null, lost: [] };
        },
        onTickDone: (tick) => {
          ticks++;
          missed += tick.missedTicks;
        },
      },
      50,
    );
    runner.start();
    await until("five ticks", 5_000, () => ticks >= 5);
    await runner.stop();
    expect(missed).toBeGreaterThanOrEqual(2 * ticks - 2);
  });
});
