import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { lateness } from "../../gateway/core/correction.js";
import { convergence } from "../../gateway/core/convergence.js";
import { IN_STEP_TOLERANCE_MS, type IntersectionPlan } from "../../gateway/core/model.js";
import { mod } from "../../gateway/core/units.js";
import { SafetyOracle } from "../../simulators/signal-oracle.js";
import { VirtualIntersection } from "../support/drive.js";
import { setupArb } from "../support/random-signal.js";

const BASE_TICK_MS = 100;
const MAX_JITTER_MS = 40;
const WITHIN_TEST_TIMEOUT = { interruptAfterTimeLimit: 150_000 } as const;

interface Run {
  /** Lateness of the first cycle out of step (the one after the clock step). */
  readonly firstLateMs: number;
  /** Cycles that started out of step before the first one in step; -1 if none did in the run. */
  readonly cyclesOut: number;
  /** Wall time from the first cycle out of step to the first in-step one. */
  readonly msOut: number;
}

/**
 * Starts the real controller (start-up flash, all-red, then cycles) on its offset point — a start-up
 * enters the cycle where the clock puts it, in step — then steps the wall clock `targetLateMs` ahead
 * during the first cycle, so that the second starts that late (an NTP step, or what a plan switch
 * leaves). Ticks it (with jitter), checks every step with the safety oracle, and counts the cycles from
 * the second until one starts in step.
 */
function runFrom(
  setup: { intersection: VirtualIntersection["state"]["seq"]["intersection"]; plan: IntersectionPlan },
  targetLateMs: number,
  jitter: readonly number[],
  maxCycles: number,
  tickMs = BASE_TICK_MS,
): Run {
  const { intersection, plan } = setup;
  const c = plan.cycleMs;
  const startupMs = intersection.startupFlashMs + intersection.startupAllRedMs;
  // A day well past its sync point, so that no sync point interrupts the run.
  const day = Date.UTC(2026, 2, 3);
  const idealStart = day + plan.dailySyncMs + mod(plan.offsetMs - plan.referencePositionMs, c) + 10 * c;
  const wall0 = idealStart - startupMs;
  const x = new VirtualIntersection(intersection, plan, { monoMs: 5_000, wallMs: wall0 });
  const oracle = new SafetyOracle(intersection);
  const untilMs = startupMs + (maxCycles + 3) * c * 1.6;
  let stepped = false;
  for (let i = 0; x.monoMs - 5_000 < untilMs; i++) {
    x.tick(tickMs + (jitter[i % jitter.length] as number));
    const violation = oracle.observe(x.lastAspects, x.monoMs);
    if (violation) expect.fail(violation);
    expect(x.mode).not.toBe("fault");
    const starts = x.signals.filter((t) => t.event.type === "cycle-start");
    if (!stepped && starts.length === 1) {
      stepped = true;
      x.wallMs += targetLateMs;
    }
    const late = starts.slice(1);
    const first = late[0];
    const inStepAt = late.findIndex((t) => {
      const l = lateness(plan, t.now.wallMs);
      return Math.min(l, c - l) <= IN_STEP_TOLERANCE_MS;
    });
    if (first && inStepAt >= 0) {
      return {
        firstLateMs: lateness(plan, first.now.wallMs),
        cyclesOut: inStepAt,
        msOut: (late[inStepAt]?.now.wallMs as number) - first.now.wallMs,
      };
    }
  }
  const first = x.signals.filter((t) => t.event.type === "cycle-start")[1];
  return {
    firstLateMs: first ? lateness(plan, first.now.wallMs) : Number.NaN,
    cyclesOut: -1,
    msOut: Number.NaN,
  };
}

describe("offset convergence bound (gateway/core/convergence.ts) against the sequencer", () => {
  it(
    "no start takes more cycles or more time than the bound, from any offset error, with tick jitter",
    { timeout: 200_000 },
    () => {
      fc.assert(
        fc.property(
          setupArb,
          fc.boolean(),
          fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
          fc.array(fc.integer({ min: 0, max: MAX_JITTER_MS }), { minLength: 1, maxLength: 32 }),
          (setup, useB, fraction, jitter) => {
            const plan = useB ? setup.planB : setup.planA;
            const bound = convergence(plan, BASE_TICK_MS + MAX_JITTER_MS);
            fc.pre(Number.isFinite(bound.cycles));
            const run = runFrom(
              { intersection: setup.intersection, plan },
              Math.floor(fraction * plan.cycleMs),
              jitter,
              bound.cycles,
            );
            expect(run.cyclesOut, `not in step within ${bound.cycles + 2} cycles`).toBeGreaterThanOrEqual(0);
            expect(run.cyclesOut).toBeLessThanOrEqual(bound.cycles);
            expect(run.msOut).toBeLessThanOrEqual(bound.ms);
          },
        ),
        { numRuns: 80, ...WITHIN_TEST_TIMEOUT },
      );
    },
  );

  it(
    "the bound is reached: a start at the worst offset error takes exactly the loss-free worst (fine ticks)",
    { timeout: 200_000 },
    () => {
      const FINE_TICK_MS = 10;
      fc.assert(
        fc.property(setupArb, fc.boolean(), (setup, useB) => {
          const plan = useB ? setup.planB : setup.planA;
          const exact = convergence(plan, 0);
          const fine = convergence(plan, FINE_TICK_MS);
          expect(exact.cycles).toBeLessThanOrEqual(convergence(plan, BASE_TICK_MS).cycles);
          // Fine ticks still end a cycle up to 3 ticks late: the start must stay in the worst range.
          fc.pre(
            Number.isFinite(exact.cycles) && exact.worstWidthMs > 2 * exact.cycles * fine.lossPerCycleMs + 20,
          );
          const run = runFrom(
            { intersection: setup.intersection, plan },
            exact.worstLateMs,
            [0],
            exact.cycles,
            FINE_TICK_MS,
          );
          expect(run.firstLateMs).toBe(exact.worstLateMs);
          expect(run.cyclesOut).toBe(exact.cycles);
        }),
        { numRuns: 25, ...WITHIN_TEST_TIMEOUT },
      );
    },
  );
});

describe("offset convergence bound, by hand", () => {
  // 100 s cycle, shortway −15 s / +20 s, two roomy stages (am-peak at elm).
  const plan: IntersectionPlan = {
    intersectionId: "elm",
    planId: "am-peak",
    version: 1,
    cycleMs: 100_000,
    offsetMs: 0,
    offsetReference: "start-of-green",
    coordinatedStage: 0,
    stages: [
      { id: "main", groups: [0], member: [true, false], splitMs: 60_000, minMs: 16_000 },
      { id: "side", groups: [1], member: [false, true], splitMs: 40_000, minMs: 16_000 },
    ],
    correction: { mode: "shortway", maxLengthenMs: 20_000, maxShortenMs: 15_000 },
    referencePositionMs: 0,
    dailySyncMs: 0,
  };

  it("without tick loss: three cuts of 15 s, or three waits of 20 s (45 s late is the worst)", () => {
    const exact = convergence(plan, 0);
    expect(exact.cycles).toBe(3);
    // The longest: 54.999 s early (45.001 s late lengthens), waited for in three cycles of 100 s + 55 s.
    expect(exact.ms).toBe(3 * 100_000 + 54_999);
    expect(exact.lossPerCycleMs).toBe(0);
  });

  it("with 100 ms ticks: a cycle may end up to 300 ms late, which can leave 45 s late 0.9 s out after three cuts", () => {
    const ticked = convergence(plan, 100);
    expect(ticked.lossPerCycleMs).toBe(300);
    expect(ticked.cycles).toBe(4);
  });

  it("dwell only lengthens: from just past the tolerance late, most of a cycle to wait", () => {
    const dwell = convergence({ ...plan, correction: { mode: "dwell", maxDwellMs: 20_000 } }, 0);
    // 99.5 s early at worst: five waits of up to 20 s.
    expect(dwell.cycles).toBe(5);
  });

  it("a loss the correction cannot outrun has no bound", () => {
    // Stages 0.4 s above their minimums: a 0.6 s trim leaves each 0.1 s of room, so a late start is
    // passed on (3 ticks of 100 ms per stage): the cycle can end 0.6 s late, the error it removed.
    const tight: IntersectionPlan = {
      ...plan,
      stages: plan.stages.map((s) => ({ ...s, minMs: s.splitMs - 400 })),
      correction: { mode: "shortway", maxLengthenMs: 20_000, maxShortenMs: 700 },
    };
    expect(convergence(tight, 100).cycles).toBe(Number.POSITIVE_INFINITY);
    expect(convergence(tight, 0).cycles).toBeLessThan(Number.POSITIVE_INFINITY);
  });
});
