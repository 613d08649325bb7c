import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadIntersectionSetup } from "../../gateway/config/load.js";
import {
  checkTickMs,
  longestTick,
  MIN_TICKS_PER_FLASH_HALF,
  MIN_TICKS_PER_MONITOR_WINDOW,
  tickLimits,
} from "../../gateway/config/tick.js";
import { lampsFor } from "../../gateway/core/lamps.js";
import type { Aspect, Intersection, Lamps, MonitorWindows } from "../../gateway/core/model.js";
import { checkObserved, type FaultLatch, startMonitor } from "../../gateway/core/monitor.js";
import { VirtualIntersection } from "../support/drive.js";
import { setupArb } from "../support/random-signal.js";

// elm: default monitor windows (conflict 300, red fail 800, mismatch 1000 ms), 55 flashes/min, one
// generic module with a host watchdog (watchdogMs 1000, faultWindowMs 1000).
const elmSetup = loadIntersectionSetup("config/intersections/elm.yaml");
const elm = elmSetup.intersection.intersection;
const elmModules = elmSetup.intersection.modules;

const WALL0 = 1_800_000_000_000;

/** The monitor windows and flash rates the intersection schema accepts. */
const windowsArb: fc.Arbitrary<MonitorWindows> = fc.record({
  conflictMs: fc.integer({ min: 100, max: 1000 }),
  redFailMs: fc.integer({ min: 700, max: 2000 }),
  mismatchMs: fc.integer({ min: 700, max: 3000 }),
});
const flashPeriodArb = fc.integer({ min: 50, max: 60 }).map((perMinute) => Math.round(60_000 / perMinute));

describe("the longest tick an intersection supports", () => {
  it("is 100 ms for the default windows, set by the 300 ms conflict window", () => {
    const limit = longestTick(elm, elmModules);
    expect(limit.maxTickMs).toBe(100);
    expect(limit.window).toBe("its conflict window (monitor.conflictMs 300 ms)");
    expect(checkTickMs(100, elm, elmModules)).toBeNull();
    expect(checkTickMs(20, elm, elmModules)).toBeNull();
  });

  it("refuses a longer tick naming the limit, the window and what the tick would do", () => {
    expect(checkTickMs(101, elm, elmModules, "--tick-ms 101")).toBe(
      "--tick-ms 101 is too long for intersection elm: at most 100 ms, set by its conflict window " +
        "(monitor.conflictMs 300 ms), which must span at least 3 ticks: the monitor sees the lamps once " +
        "per tick, so with 101 ms ticks conflicting greens could stand for up to 502 ms before the fault latches",
    );
  });

  it("refuses the 1000 ms tick of issue 12, naming the flash among the limits it exceeds", () => {
    const message = checkTickMs(1000, elm, elmModules, "--tick-ms 1000") as string;
    expect(message).toMatch(/^--tick-ms 1000 is too long for intersection elm: at most 100 ms/);
    expect(message).toContain("up to 2300 ms");
    expect(message).toContain("its flash (55 flashes/min: 545 ms lit, then dark) (at most 272 ms)");
    expect(message).toContain("the host watchdog of io1 (watchdogMs 1000 ms) (at most 333 ms)");
  });

  it("is set by the flash when the monitor windows are wide", () => {
    const wide: Intersection = { ...elm, monitor: { conflictMs: 1000, redFailMs: 2000, mismatchMs: 3000 } };
    const limit = longestTick(wide);
    expect(limit.maxTickMs).toBe(Math.floor(545 / MIN_TICKS_PER_FLASH_HALF));
    expect(checkTickMs(300, wide)).toContain("a false red fail on healthy lamps");
  });

  it("counts a module's watchdog only when its profile has one, and its fault window always", () => {
    const io1 = elmModules[0];
    if (!io1) throw new Error("elm has a module");
    const tight = { ...io1, watchdogMs: 200, faultWindowMs: 240 };
    expect(longestTick(elm, [tight]).window).toBe("the host watchdog of io1 (watchdogMs 200 ms)");
    expect(longestTick(elm, [tight]).maxTickMs).toBe(66);
    const noWatchdog = { ...tight, profile: { ...tight.profile, watchdog: null } };
    expect(longestTick(elm, [noWatchdog]).window).toBe("the fault window of io1 (faultWindowMs 240 ms)");
    expect(tickLimits(elm, [noWatchdog]).some((l) => l.window.includes("watchdog"))).toBe(false);
  });
});

describe("the refused tick, run anyway", () => {
  it("a 1000 ms tick raises a false red fail on healthy lamps within 15 s (issue 12)", () => {
    const x = new VirtualIntersection(elm, elmSetup.initialPlan, { monoMs: 0, wallMs: WALL0 });
    let fault: FaultLatch | null = null;
    for (let t = 0; t < 15_000 && !fault; t += 1000) {
      x.tick(1000); // the field shows exactly what was written: healthy lamps
      fault = x.state.mon.latch;
    }
    expect(fault?.kind).toBe("red-fail");
  });
});

describe("for every intersection and every accepted tick (property)", () => {
  it("a healthy field never raises a fault: start-up flash, running, scheduled flash, late ticks", () => {
    fc.assert(
      fc.property(
        setupArb,
        windowsArb,
        flashPeriodArb,
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.array(fc.double({ min: 0, max: 0.5, noNaN: true }), { minLength: 1, maxLength: 32 }),
        fc.integer({ min: 11_000, max: 40_000 }),
        (setup, monitor, flashPeriodMs, tickPick, lateness, flashAtMs) => {
          const intersection: Intersection = { ...setup.intersection, monitor, flashPeriodMs };
          const longest = longestTick(intersection).maxTickMs;
          const tickMs = Math.round(20 + tickPick * (longest - 20));
          expect(checkTickMs(tickMs, intersection)).toBeNull();
          const x = new VirtualIntersection(intersection, setup.planA, { monoMs: 0, wallMs: WALL0 });
          // Ticks on a fixed grid, each up to half a tick late (the runner never lets one drift).
          let now = 0;
          let flashAsked = false;
          for (let k = 1; k * tickMs <= flashAtMs + 20_000 && !x.state.mon.latch; k++) {
            const at = k * tickMs + Math.floor((lateness[k % lateness.length] as number) * tickMs);
            x.tick(at - now);
            now = at;
            if (!flashAsked && now >= flashAtMs) {
              x.dispatch({ type: "enter-flash" });
              flashAsked = true;
            }
          }
          expect(x.state.mon.latch).toBeNull();
        },
      ),
      { numRuns: 60 },
    );
  });

  it("a conflict in the field latches a fault within its window plus two ticks", () => {
    // elm's M and S may not show green together; the field shows both (S's load switch stuck on).
    const commanded: Aspect[] = ["green", "red", "walk", "dont-walk"];
    const commandedLamps: Lamps[] = commanded.map((a) => lampsFor(a, true));
    const conflicting: Lamps[] = [...commandedLamps];
    conflicting[1] = { red: false, yellow: false, green: true };
    fc.assert(
      fc.property(
        windowsArb,
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (monitor, tickPick, onsetPick) => {
          const intersection: Intersection = { ...elm, monitor };
          const longest = longestTick(intersection).maxTickMs;
          const tickMs = Math.round(20 + tickPick * (longest - 20));
          const onsetMs = 10_000 + onsetPick * tickMs;
          let state = startMonitor(intersection, null);
          let latchedAt: number | null = null;
          for (let t = 0; latchedAt === null && t < onsetMs + 10_000; t += tickMs) {
            const observed = t >= onsetMs ? conflicting : commandedLamps;
            const verdict = checkObserved(state, observed, commandedLamps, commanded, {
              monoMs: t,
              wallMs: WALL0 + t,
            });
            state = verdict.state;
            if (verdict.fault) latchedAt = t;
          }
          expect(latchedAt).not.toBeNull();
          const latency = (latchedAt as number) - onsetMs;
          expect(latency).toBeLessThan(monitor.conflictMs + 2 * tickMs);
          expect(latency).toBeLessThan(monitor.conflictMs * (1 + 2 / MIN_TICKS_PER_MONITOR_WINDOW));
        },
      ),
      { numRuns: 300 },
    );
  });
});
