import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { lateness } from "../../gateway/core/correction.js";
import { DAY_MS, IN_STEP_TOLERANCE_MS } from "../../gateway/core/model.js";
import { correctionCycleBound } from "../../gateway/core/plan.js";
import { VirtualIntersection } from "../support/drive.js";
import { type RandomSetup, setupArb } from "../support/random-signal.js";
import { SafetyOracle } from "../../simulators/signal-oracle.js";

const BASE_TICK_MS = 100;
const MAX_JITTER_MS = 40;

/**
 * A failure is shrunk by replaying scenarios of up to 25 simulated minutes, synchronously: the test's
 * timeout cannot stop that. Past this limit fast-check stops (a loaded machine runs fewer scenarios;
 * a failure found so far is still reported, with its seed and path).
 */
const WITHIN_TEST_TIMEOUT = { interruptAfterTimeLimit: 180_000 } as const;

interface Scenario {
  readonly setup: RandomSetup;
  readonly wall0: number;
  readonly mono0: number;
  /** When (after start) the plan change is scheduled, and how far ahead its activation instant is. */
  readonly scheduleAfterMs: number;
  readonly activationLeadMs: number;
  readonly jitter: readonly number[];
  /** Further plan changes, alternating A and B, each after the previous one: (delay, activation lead). */
  readonly moreChanges: readonly { afterMs: number; leadMs: number }[];
  /** An operator's scheduled flash: entered at `atMs` after start, left `forMs` later. */
  readonly flash: { readonly atMs: number; readonly forMs: number } | null;
  /** Wall-clock steps (NTP corrections) at these instants after start. */
  readonly clockSteps: readonly { atMs: number; stepMs: number }[];
}

const scenarioArb = (withClockSteps: boolean): fc.Arbitrary<Scenario> =>
  fc.record({
    setup: setupArb,
    wall0: fc.integer({ min: 1_700_000_000_000, max: 1_900_000_000_000 }),
    mono0: fc.integer({ min: 0, max: 10_000_000 }),
    scheduleAfterMs: fc.integer({ min: 0, max: 400_000 }),
    activationLeadMs: fc.integer({ min: 0, max: 300_000 }),
    jitter: fc.array(fc.integer({ min: 0, max: MAX_JITTER_MS }), { minLength: 1, maxLength: 64 }),
    moreChanges: withClockSteps
      ? fc.array(
          fc.record({
            afterMs: fc.integer({ min: 0, max: 200_000 }),
            leadMs: fc.integer({ min: 0, max: 100_000 }),
          }),
          {
            maxLength: 5,
          },
        )
      : fc.constant([]),
    flash: withClockSteps
      ? fc.option(
          fc.record({
            atMs: fc.integer({ min: 0, max: 600_000 }),
            forMs: fc.integer({ min: 0, max: 60_000 }),
          }),
        )
      : fc.constant(null),
    clockSteps: withClockSteps
      ? fc.array(
          fc.record({
            atMs: fc.integer({ min: 0, max: 1_500_000 }),
            stepMs: fc.integer({ min: -120_000, max: 120_000 }),
          }),
          { maxLength: 3 },
        )
      : fc.constant([]),
  });

/** The first daily sync instant at or after `wallMs`. */
function nextDailySync(dailySyncMs: number, wallMs: number): number {
  const today = Math.floor(wallMs / DAY_MS) * DAY_MS + dailySyncMs;
  return today >= wallMs ? today : today + DAY_MS;
}

interface Outcome {
  readonly violation: string | null;
  readonly x: VirtualIntersection;
  readonly activationWallMs: number;
}

/** Runs a scenario: start-up, plan A, plan B scheduled mid-run, until `untilMs` after start. */
function run(s: Scenario, untilMs: number): Outcome {
  const { intersection, planA, planB } = s.setup;
  const x = new VirtualIntersection(intersection, planA, { monoMs: s.mono0, wallMs: s.wall0 });
  const oracle = new SafetyOracle(intersection);
  let scheduled = false;
  let flashLeft = false;
  let activationWallMs = Number.NaN;
  const changes = [...s.moreChanges];
  let nextChangeAtMs = Number.POSITIVE_INFINITY;
  let nextPlan = planA;
  const steps = [...s.clockSteps].sort((a, b) => a.atMs - b.atMs);
  for (let i = 0; x.monoMs - s.mono0 < untilMs; i++) {
    x.tick(BASE_TICK_MS + (s.jitter[i % s.jitter.length] as number));
    const elapsed = x.monoMs - s.mono0;
    while (steps.length > 0 && (steps[0]?.atMs as number) <= elapsed)
      x.wallMs += steps.shift()?.stepMs as number;
    if (!scheduled && elapsed >= s.scheduleAfterMs) {
      scheduled = true;
      activationWallMs = x.wallMs + s.activationLeadMs;
      x.dispatch({ type: "schedule-plan", plan: planB, activationWallMs });
      nextChangeAtMs = elapsed + (changes[0]?.afterMs ?? Number.POSITIVE_INFINITY);
    }
    if (elapsed >= nextChangeAtMs) {
      const change = changes.shift();
      x.dispatch({
        type: "schedule-plan",
        plan: nextPlan,
        activationWallMs: x.wallMs + (change?.leadMs ?? 0),
      });
      nextPlan = nextPlan === planA ? planB : planA;
      nextChangeAtMs = elapsed + (changes[0]?.afterMs ?? Number.POSITIVE_INFINITY);
    }
    if (s.flash && elapsed >= s.flash.atMs && elapsed - BASE_TICK_MS - MAX_JITTER_MS < s.flash.atMs) {
      x.dispatch({ type: "enter-flash" });
    }
    // Left once, whatever the mode: a leave while the clearances into flash still run must not be lost.
    const leaveAt = s.flash ? s.flash.atMs + s.flash.forMs : Number.POSITIVE_INFINITY;
    if (elapsed >= leaveAt && !flashLeft) {
      flashLeft = true;
      x.dispatch({ type: "leave-flash" });
    }
    if (x.mode === "fault") {
      const latch = x.state.mon.latch;
      return {
        violation: `t=${x.monoMs}: monitor latched ${latch?.kind}: ${latch?.message}`,
        x,
        activationWallMs,
      };
    }
    const violation = oracle.observe(x.lastAspects, x.monoMs);
    if (violation) return { violation, x, activationWallMs };
  }
  return { violation: null, x, activationWallMs };
}

/** Fails with the whole violation and the last signal events, so a counterexample reads as a trace. */
function expectSafe(outcome: Outcome): void {
  if (outcome.violation === null) return;
  const trace = outcome.x.signals
    .slice(-12)
    .map((t) => `  ${t.now.monoMs} ${JSON.stringify(t.event)}`)
    .join("\n");
  expect.fail(`${outcome.violation}\nlast events:\n${trace}`);
}

describe("sequencer under random plans and plan changes", () => {
  it(
    "never shows conflicting greens, never cuts a minimum or a clearance, even with wall-clock steps",
    { timeout: 240_000 },
    () => {
      fc.assert(
        fc.property(scenarioArb(true), (s) => {
          const changes = s.moreChanges.reduce((sum, c) => sum + c.afterMs + c.leadMs, 0);
          const horizon = s.scheduleAfterMs + s.activationLeadMs + changes + 4 * s.setup.planB.cycleMs;
          expectSafe(run(s, Math.min(horizon, 1_500_000)));
        }),
        { numRuns: 200, ...WITHIN_TEST_TIMEOUT },
      );
    },
  );

  it(
    "switches at the first cycle boundary of the activation instant (never earlier than the in-step tolerance), and is in step within the correction bound",
    { timeout: 240_000 },
    () => {
      fc.assert(
        fc.property(scenarioArb(false), (s) => {
          const tickMs = BASE_TICK_MS + MAX_JITTER_MS;
          const bound = correctionCycleBound(s.setup.planB, tickMs);
          fc.pre(Number.isFinite(bound));
          const maxCycleA = s.setup.planA.cycleMs * 1.5 + 60_000;
          const settleMs = (bound + 1) * s.setup.planB.cycleMs * 1.6;
          const untilMs = s.scheduleAfterMs + s.activationLeadMs + maxCycleA + settleMs;
          // Ideal cycle starts are counted from each day's sync point: a cycle that does not divide the
          // day re-synchronises there. A run that crosses it gets the time to come back in step after it.
          const syncWallMs = nextDailySync(s.setup.planB.dailySyncMs, s.wall0);
          const syncAfterMs = syncWallMs - s.wall0;
          const outcome = run(
            s,
            syncAfterMs <= untilMs ? Math.max(untilMs, syncAfterMs + settleMs) : untilMs,
          );
          expectSafe(outcome);
          const { x, activationWallMs } = outcome;

          const activated = x.signals.findIndex((t) => t.event.type === "plan-activated");
          expect(activated, "plan B never took effect").toBeGreaterThanOrEqual(0);
          const at = x.signals[activated]?.now as { wallMs: number };
          // At the boundary of the activation instant: never earlier than the in-step tolerance.
          expect(at.wallMs).toBeGreaterThanOrEqual(activationWallMs - IN_STEP_TOLERANCE_MS);
          // No cycle of the old plan starts once the activation instant has passed (one tick of slack per stage).
          const slack = 3 * s.setup.planA.stages.length * tickMs;
          const lateOldCycles = x.signals.filter(
            (t) =>
              t.event.type === "cycle-start" &&
              t.event.planId === "A" &&
              t.now.wallMs >= activationWallMs + slack,
          );
          expect(lateOldCycles).toEqual([]);

          const cyclesOfB = x.signals.slice(activated).filter((t) => t.event.type === "cycle-start");
          const inStep = (t: (typeof cyclesOfB)[number]) => {
            const late = lateness(s.setup.planB, t.now.wallMs);
            return Math.min(late, s.setup.planB.cycleMs - late) <= IN_STEP_TOLERANCE_MS;
          };
          // In step within the bound after the switch, and again after a daily sync point if one fell
          // later in the run (a sync point that interrupts the first correction restarts its count).
          const resync = cyclesOfB.findIndex((t) => t.now.wallMs >= syncWallMs);
          const windows = resync > 0 ? [cyclesOfB.slice(0, resync), cyclesOfB.slice(resync)] : [cyclesOfB];
          windows.forEach((cycles, w) => {
            const firstInStep = cycles.findIndex(inStep);
            if (w < windows.length - 1 && firstInStep < 0 && cycles.length <= bound) return;
            expect(firstInStep, `not in step within ${cycles.length} cycles`).toBeGreaterThanOrEqual(0);
            expect(firstInStep).toBeLessThanOrEqual(bound);
          });
          expect(x.mode).toBe("coordinated");
        }),
        { numRuns: 120, ...WITHIN_TEST_TIMEOUT },
      );
    },
  );
});
