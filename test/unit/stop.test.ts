import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadIntersectionSetup } from "../../gateway/config/load.js";
import { readyToStop } from "../../gateway/core/controller.js";
import type { Aspect } from "../../gateway/core/model.js";
import { stopBoundMs } from "../../gateway/core/sequencer.js";
import { SafetyOracle } from "../../simulators/signal-oracle.js";
import { VirtualIntersection } from "../support/drive.js";
import { setupArb } from "../support/random-signal.js";

const elm = loadIntersectionSetup("config/intersections/elm.yaml");
const intersection = elm.intersection.intersection;
const TICK_MS = 100;

const allRed = (aspects: readonly Aspect[]) => aspects.every((a) => a === "red" || a === "dont-walk");

/** Ticks until a clean stop may hand the lamps over; returns every tick's aspects and the time taken. */
function runToStop(x: VirtualIntersection, oracle: SafetyOracle | null, limitMs: number) {
  const start = x.monoMs;
  const seen: { t: number; aspects: readonly Aspect[] }[] = [];
  while (!readyToStop(x.state)) {
    if (x.monoMs - start > limitMs) return { seen, tookMs: Number.POSITIVE_INFINITY, violation: null };
    x.tick(TICK_MS);
    seen.push({ t: x.monoMs - start, aspects: x.lastAspects });
    const violation = oracle?.observe(x.lastAspects, x.monoMs) ?? null;
    if (violation) return { seen, tookMs: x.monoMs - start, violation };
  }
  return { seen, tookMs: x.monoMs - start, violation: null };
}

describe("a clean stop", () => {
  it("ends Main Street's green through its minimum, yellow and red clearance, and the walk through its clearance", () => {
    const x = new VirtualIntersection(intersection, elm.initialPlan, {
      monoMs: 1_000,
      wallMs: Date.UTC(2026, 0, 5, 8, 0, 0),
    });
    // Start-up takes 10 s; then stage main: M green, PS walk. Stop 2 s into it.
    while (x.lastAspects[0] !== "green") x.tick(TICK_MS);
    for (let i = 0; i < 20; i++) x.tick(TICK_MS);
    x.dispatch({ type: "stop" });
    const { seen, tookMs } = runToStop(x, null, 60_000);
    const m = seen.map((s) => s.aspects[0]).filter((a, i, all) => i === 0 || a !== all[i - 1]);
    const ps = seen.map((s) => s.aspects[2]).filter((a, i, all) => i === 0 || a !== all[i - 1]);
    expect(m).toEqual(["green", "yellow", "red"]);
    expect(ps).toEqual(["walk", "ped-clearance", "dont-walk"]);
    // M keeps its 10 s minimum (2 s shown already), then 4 s of yellow.
    const mYellow = seen.find((s) => s.aspects[0] === "yellow")?.t as number;
    expect(mYellow).toBeGreaterThanOrEqual(8_000 - TICK_MS);
    const mRed = seen.find((s) => s.t > mYellow && s.aspects[0] === "red")?.t as number;
    expect(mRed - mYellow).toBeGreaterThanOrEqual(4_000);
    // The walk keeps its 7 s, then 10 s of pedestrian clearance (crossing Elm Ave).
    const psClear = seen.find((s) => s.aspects[2] === "ped-clearance")?.t as number;
    const psDone = seen.find((s) => s.t > psClear && s.aspects[2] === "dont-walk")?.t as number;
    expect(psDone - psClear).toBeGreaterThanOrEqual(10_000);
    expect(allRed(x.lastAspects)).toBe(true);
    expect(x.mode).toBe("stopping");
    expect(tookMs).toBeLessThanOrEqual(stopBoundMs(intersection, TICK_MS));
  });

  it("is all-red at once from start-up flash, and from a latched fault it hands over at once", () => {
    const x = new VirtualIntersection(intersection, elm.initialPlan, { monoMs: 0, wallMs: 0 });
    x.tick(TICK_MS);
    x.dispatch({ type: "stop" });
    expect(runToStop(x, null, 1_000).tookMs).toBe(TICK_MS);
    expect(allRed(x.lastAspects)).toBe(true);

    const faulted = new VirtualIntersection(intersection, elm.initialPlan, { monoMs: 0, wallMs: 0 });
    faulted.tick(TICK_MS);
    faulted.dispatch({ type: "device-lost", device: "io1", detail: "gone" });
    faulted.dispatch({ type: "stop" });
    expect(readyToStop(faulted.state)).toBe(true);
  });

  it("ignores flash requests once asked for", () => {
    const x = new VirtualIntersection(intersection, elm.initialPlan, { monoMs: 0, wallMs: 0 });
    while (x.lastAspects[0] !== "green") x.tick(TICK_MS);
    x.dispatch({ type: "stop" });
    x.tick(TICK_MS);
    x.dispatch({ type: "enter-flash" });
    runToStop(x, null, 60_000);
    expect(x.mode).toBe("stopping");
    expect(allRed(x.lastAspects)).toBe(true);
  });

  it(
    "for random intersections, plans, flash and stop instants: never cuts anything, and ends all-red within its bound",
    { timeout: 120_000 },
    () => {
      fc.assert(
        fc.property(
          setupArb,
          fc.integer({ min: 0, max: 400_000 }),
          fc.option(
            fc.record({
              atMs: fc.integer({ min: 0, max: 300_000 }),
              forMs: fc.integer({ min: 0, max: 30_000 }),
            }),
          ),
          (setup, stopAfterMs, flash) => {
            const x = new VirtualIntersection(setup.intersection, setup.planA, {
              monoMs: 5_000,
              wallMs: 1_800_000_000_000,
            });
            const oracle = new SafetyOracle(setup.intersection);
            let flashEntered = false;
            let flashLeft = false;
            for (let elapsed = 0; elapsed < stopAfterMs; elapsed += TICK_MS) {
              x.tick(TICK_MS);
              if (flash && !flashEntered && elapsed >= flash.atMs) {
                flashEntered = true;
                x.dispatch({ type: "enter-flash" });
              }
              if (flash && flashEntered && !flashLeft && elapsed >= flash.atMs + flash.forMs) {
                flashLeft = true;
                x.dispatch({ type: "leave-flash" });
              }
              const violation = oracle.observe(x.lastAspects, x.monoMs);
              if (violation) expect.fail(`before the stop: ${violation}`);
            }
            x.dispatch({ type: "stop" });
            const bound = stopBoundMs(setup.intersection, TICK_MS);
            const { tookMs, violation } = runToStop(x, oracle, bound + 10 * TICK_MS);
            if (violation) expect.fail(`during the stop: ${violation}`);
            expect(x.mode).not.toBe("fault");
            expect(tookMs).toBeLessThanOrEqual(bound);
            expect(allRed(x.lastAspects)).toBe(true);
          },
        ),
        { numRuns: 150 },
      );
    },
  );
});

describe("leaving scheduled flash", () => {
  it("is not lost when asked for while the clearances into flash still run", () => {
    const x = new VirtualIntersection(intersection, elm.initialPlan, {
      monoMs: 1_000,
      wallMs: Date.UTC(2026, 0, 5, 8, 0, 0),
    });
    const oracle = new SafetyOracle(intersection);
    const tickChecked = () => {
      x.tick(TICK_MS);
      const violation = oracle.observe(x.lastAspects, x.monoMs);
      if (violation) expect.fail(violation);
    };
    while (x.lastAspects[0] !== "green") tickChecked();
    x.dispatch({ type: "enter-flash" });
    for (let i = 0; i < 11; i++) tickChecked(); // 1.1 s later: M still green (its 10 s minimum)
    expect(x.mode).toBe("flash");
    x.dispatch({ type: "leave-flash" });
    let flashShown = false;
    for (let t = 0; t < 60_000 && x.mode !== "transition" && x.mode !== "coordinated"; t += TICK_MS) {
      tickChecked();
      if (x.state.seq.mode === "flash") flashShown = true;
    }
    // The clearances ran to all-red and normal operation came back, with no flash in between.
    expect(flashShown).toBe(false);
    expect(["transition", "coordinated"]).toContain(x.mode);
  });
});
