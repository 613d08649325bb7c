import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Aspect, Lamps } from "../../gateway/core/model.js";
import { holdRefusal } from "../../gateway/core/sequencer.js";
import type { PreviousRun } from "../../gateway/core/sequencer-types.js";
import { SafetyOracle } from "../../simulators/signal-oracle.js";
import { VirtualIntersection } from "../support/drive.js";
import { type RandomSetup, setupArb } from "../support/random-signal.js";

/**
 * Restarts and holds over random intersections and plans, checked by the independent safety oracle
 * (simulators/signal-oracle.ts) across the restart: the lamps the dead process left are held through the
 * gap, then the new process's. A pedestrian clearance frozen by the module reads back as steady DON'T
 * WALK; the oracle is told it goes on for its full time — what the pedestrians on the crossing need —
 * so that a conflicting green before its end, not the steady DON'T WALK itself, is what fails.
 */

const BASE_TICK_MS = 100;
const MAX_JITTER_MS = 40;
const WITHIN_TEST_TIMEOUT = { interruptAfterTimeLimit: 150_000 } as const;

interface Restart {
  readonly setup: RandomSetup;
  readonly wall0: number;
  readonly crashAfterMs: number;
  readonly gapMs: number;
  readonly previous: PreviousRun;
  readonly cleanStopFirst: boolean;
  /** The new process's wall clock against the dead one's: a run that was out of step, or a clock step. */
  readonly skewMs: number;
  readonly jitter: readonly number[];
}

const restartArb: fc.Arbitrary<Restart> = fc.record({
  setup: setupArb,
  wall0: fc.integer({ min: 1_700_000_000_000, max: 1_900_000_000_000 }),
  crashAfterMs: fc.integer({ min: 0, max: 600_000 }),
  gapMs: fc.integer({ min: 0, max: 3_000 }),
  previous: fc.constantFrom<PreviousRun>("ended-abruptly", "ended-abruptly", "unknown"),
  cleanStopFirst: fc.constantFrom(false, false, false, true),
  skewMs: fc.oneof(fc.constant(0), fc.integer({ min: -60_000, max: 60_000 })),
  jitter: fc.array(fc.integer({ min: 0, max: MAX_JITTER_MS }), { minLength: 1, maxLength: 32 }),
});

function tickChecked(
  x: VirtualIntersection,
  oracle: SafetyOracle,
  jitter: readonly number[],
  i: number,
  view: (aspects: readonly Aspect[]) => readonly Aspect[] = (a) => a,
): void {
  x.tick(BASE_TICK_MS + (jitter[i % jitter.length] as number));
  if (x.mode === "fault") expect.fail(`t=${x.monoMs}: latched ${x.state.mon.latch?.message}`);
  const violation = oracle.observe(view(x.lastAspects), x.monoMs);
  if (violation) {
    const trace = x.signals
      .slice(-10)
      .map((s) => `  ${s.now.monoMs} ${JSON.stringify(s.event)}`)
      .join("\n");
    expect.fail(`${violation}\n${trace}`);
  }
}

describe("restarts and holds under random plans", () => {
  it(
    "a restart — taken over, warm or cold — never shows conflicting greens or cuts a minimum or a clearance across it",
    { timeout: 200_000 },
    () => {
      fc.assert(
        fc.property(restartArb, (r) => {
          const { intersection, planA: plan } = r.setup;
          const a = new VirtualIntersection(intersection, plan, { monoMs: 5_000, wallMs: r.wall0 });
          const oracle = new SafetyOracle(intersection);
          const clearanceSince: number[] = intersection.groups.map(() => Number.NaN);
          let i = 0;
          const crashAt = 5_000 + r.crashAfterMs;
          while (a.monoMs < crashAt) {
            const before = [...a.lastAspects];
            tickChecked(a, oracle, r.jitter, i++);
            a.lastAspects.forEach((aspect, g) => {
              if (aspect === "ped-clearance" && before[g] !== "ped-clearance") clearanceSince[g] = a.monoMs;
            });
          }
          let previous = r.previous;
          if (r.cleanStopFirst) {
            a.dispatch({ type: "stop" });
            for (let k = 0; k < 2_000 && a.state.seq.mode !== "stopped"; k++)
              tickChecked(a, oracle, r.jitter, i++);
            expect(a.state.seq.mode).toBe("stopped");
            previous = "stopped-clean";
          }
          const held: readonly Lamps[] = a.lastLamps;
          const heldAspects = [...a.lastAspects];
          const b = new VirtualIntersection(intersection, plan, {
            monoMs: a.monoMs + r.gapMs,
            wallMs: a.wallMs + r.gapMs + r.skewMs,
          });
          b.dispatch({ type: "field-at-start", observed: held, previous });
          const how = b.signals.find((s) => s.event.type === "start-up");
          // What the crossing pedestrians were owed when the process died: the clearance goes on, unseen,
          // whatever the store proves and the lamps show (the readback sees DON'T WALK): nothing may go
          // against it before it could have ended (found by this property, seed -305589920: a first
          // start, no record, the lamps showing only a pedestrian clearance).
          const hiddenUntil = intersection.groups.map((g, gi) =>
            heldAspects[gi] === "ped-clearance"
              ? (clearanceSince[gi] as number) + g.clearanceMs
              : Number.NEGATIVE_INFINITY,
          );
          // Its end reads as steady DON'T WALK for a tick even where the heads are dark by then (start-up
          // flash): the oracle wants a clearance to end in DON'T WALK, and the pedestrians saw no WALK.
          const lastView: Aspect[] = [...heldAspects];
          const view = (aspects: readonly Aspect[]) =>
            aspects.map((aspect, g) => {
              const hidden = aspect === "dont-walk" || aspect === "dark";
              let shown: Aspect = aspect;
              if (hidden && b.monoMs < (hiddenUntil[g] as number)) shown = "ped-clearance";
              else if (aspect === "dark" && lastView[g] === "ped-clearance") shown = "dont-walk";
              lastView[g] = shown;
              return shown;
            });
          const flashed: boolean[] = [];
          const until = b.monoMs + 3 * plan.cycleMs + 20_000;
          while (b.monoMs < until) {
            tickChecked(b, oracle, r.jitter, i++, view);
            flashed.push(b.lastAspects.some((x) => x === "red-flash" || x === "yellow-flash"));
          }
          if (how?.event.type === "start-up" && how.event.how !== "cold") {
            // Taken over or warm: the intersection never flashed.
            expect(flashed.some(Boolean)).toBe(false);
            expect(b.state.seq.mode).toBe("running");
          }
        }),
        { numRuns: 150, ...WITHIN_TEST_TIMEOUT },
      );
    },
  );

  it(
    "a hold at any moment, released or expired, keeps its green and never breaks a safety rule",
    { timeout: 200_000 },
    () => {
      fc.assert(
        fc.property(
          setupArb,
          fc.integer({ min: 1_700_000_000_000, max: 1_900_000_000_000 }),
          fc.integer({ min: 0, max: 300_000 }),
          fc.integer({ min: 0, max: 400_000 }),
          fc.option(fc.integer({ min: 0, max: 400_000 })),
          fc.array(fc.integer({ min: 0, max: MAX_JITTER_MS }), { minLength: 1, maxLength: 32 }),
          (setup, wall0, holdAfterMs, forMs, releaseAfterMs, jitter) => {
            const { intersection, planA: plan } = setup;
            const x = new VirtualIntersection(intersection, plan, { monoMs: 5_000, wallMs: wall0 });
            const oracle = new SafetyOracle(intersection);
            let i = 0;
            while (x.monoMs < 5_000 + holdAfterMs) tickChecked(x, oracle, jitter, i++);
            const refused = holdRefusal(x.state.seq);
            x.dispatch({ type: "hold", forMs, by: "tester" });
            expect(x.mode === "hold").toBe(refused === null);
            const heldAt = x.monoMs;
            const releaseAt = releaseAfterMs === null ? Number.POSITIVE_INFINITY : heldAt + releaseAfterMs;
            let released = false;
            let goSeen: boolean[] | null = null;
            const until = heldAt + Math.min(forMs, releaseAfterMs ?? forMs) + 4 * plan.cycleMs;
            while (x.monoMs < until) {
              if (!released && x.monoMs >= releaseAt) {
                released = true;
                x.dispatch({ type: "release-hold", by: "tester" });
              }
              tickChecked(x, oracle, jitter, i++);
              const holding = x.mode === "hold";
              const go = x.state.seq.groups.map((g) => g.interval === "go");
              // Once a held stage's groups are green, they stay green while the hold lasts.
              if (holding && goSeen && goSeen.some((on, g) => on && !go[g]))
                expect.fail(`t=${x.monoMs}: a held green ended during the hold`);
              goSeen = holding && go.some(Boolean) ? go : null;
            }
            expect(x.mode).not.toBe("hold");
          },
        ),
        { numRuns: 100, ...WITHIN_TEST_TIMEOUT },
      );
    },
  );
});
