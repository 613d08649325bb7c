import { correctionFor, stageDurations } from "./correction.js";
import { invariant } from "./invariant.js";
import { IN_STEP_TOLERANCE_MS, type IntersectionPlan } from "./model.js";
import { mod } from "./units.js";

/**
 * How long offset correction takes, at worst, for one plan part: from any offset error at a cycle
 * boundary (a start-up, a plan switch, a clock step), how many cycles start out of step before one
 * starts in step, and how long those cycles take. Pure; `greenwave plan check` prints it, and
 * test/unit/convergence.property.test.ts holds it against the sequencer.
 */
export interface Convergence {
  /** Cycles that start out of step before the first one that starts in step, at worst. */
  readonly cycles: number;
  /** From the first cycle boundary to the first in-step one, at worst (not always the same error). */
  readonly ms: number;
  /** A lateness at the first boundary (ms, in [0, cycle)) that needs `cycles`: the middle of the widest such range. */
  readonly worstLateMs: number;
  /** How wide that range is (ms). */
  readonly worstWidthMs: number;
  /** The largest quantisation allowance per cycle the figures include (quantisationLossMs). */
  readonly lossPerCycleMs: number;
}

/**
 * How much later than planned a cycle may end because intervals change only on ticks. A stage ends
 * when its ending groups have run clearance and red clearance, each begun and ended on a tick: up to
 * three ticks late. Stage ends are planned from the cycle's start, so a stage that starts late but has
 * that much room above its minimum (in a cycle changed by `correctionMs`) still ends within three ticks of plan;
 * one without the room passes the delay on. The cycle's own start resets the count.
 */
export function quantisationLossMs(plan: IntersectionPlan, tickMs: number, correctionMs: number): number {
  const perStage = 3 * tickMs;
  const shortest = stageDurations(plan, correctionMs);
  let delay = 0;
  plan.stages.forEach((stage, k) => {
    const room = (shortest[k] as number) - stage.minMs;
    delay = room >= delay + perStage ? perStage : delay + perStage;
  });
  return delay;
}

const UNKNOWN = -1;
const VISITING = -2;

/**
 * The worst case over every whole-millisecond lateness at the first boundary, and over a quantisation
 * loss of anything from 0 to `quantisationLossMs` in every cycle. The correction's decision is the
 * sequencer's own (`correctionFor`). The cycles still needed grow with the distance to the offset
 * point in the direction the correction takes, so of the losses only the two extremes need trying.
 * A loss the correction cannot outrun (one that could keep an error above the tolerance for ever)
 * gives Infinity.
 */
export function convergence(plan: IntersectionPlan, tickMs: number): Convergence {
  const c = plan.cycleMs;
  let largestLoss = 0;
  const cycles = new Float64Array(c).fill(UNKNOWN);
  const time = new Float64Array(c);
  const inStep = (late: number) => Math.min(late, c - late) <= IN_STEP_TOLERANCE_MS;

  // Iterative depth-first search over "lateness → lateness at the next boundary" (a recursion could
  // be as deep as the slowest correction is long).
  const solve = (start: number): void => {
    const stack = [start];
    while (stack.length > 0) {
      const late = stack[stack.length - 1] as number;
      if (cycles[late] !== UNKNOWN && cycles[late] !== VISITING) {
        stack.pop();
        continue;
      }
      if (inStep(late)) {
        cycles[late] = 0;
        time[late] = 0;
        stack.pop();
        continue;
      }
      const correction = correctionFor(plan, late);
      const loss = quantisationLossMs(plan, tickMs, correction);
      largestLoss = Math.max(largestLoss, loss);
      const nexts = [0, loss].map((delta) => mod(late + correction + delta, c));
      if (cycles[late] === UNKNOWN) {
        cycles[late] = VISITING;
        for (const n of nexts) {
          if (cycles[n] === VISITING) {
            // A loss can bring the error back where it was: no bound.
            cycles[late] = Number.POSITIVE_INFINITY;
            time[late] = Number.POSITIVE_INFINITY;
            break;
          }
          if (cycles[n] === UNKNOWN) stack.push(n);
        }
        continue;
      }
      // Every successor is solved.
      let worstCycles = 0;
      let worstTime = 0;
      [0, loss].forEach((delta, k) => {
        const n = nexts[k] as number;
        worstCycles = Math.max(worstCycles, 1 + (cycles[n] as number));
        worstTime = Math.max(worstTime, c + correction + delta + (time[n] as number));
      });
      cycles[late] = worstCycles;
      time[late] = worstTime;
      stack.pop();
    }
  };

  let worst = 0;
  let worstMs = 0;
  for (let late = 0; late < c; late++) {
    solve(late);
    worst = Math.max(worst, cycles[late] as number);
    worstMs = Math.max(worstMs, time[late] as number);
  }
  invariant(worst >= 0, () => `plan ${plan.planId}: convergence search left a lateness unsolved`);
  const widest = widestRun(cycles, worst);
  return {
    cycles: worst,
    ms: worstMs,
    worstLateMs: widest.from + Math.floor(widest.length / 2),
    worstWidthMs: widest.length,
    lossPerCycleMs: largestLoss,
  };
}

/** The widest run of latenesses that need `worst` cycles (its middle is a start robust to jitter). */
function widestRun(cycles: Float64Array, worst: number): { from: number; length: number } {
  let best = { from: 0, length: 0 };
  let from = -1;
  for (let late = 0; late <= cycles.length; late++) {
    const hit = late < cycles.length && cycles[late] === worst;
    if (hit && from < 0) from = late;
    if (!hit && from >= 0) {
      if (late - from > best.length) best = { from, length: late - from };
      from = -1;
    }
  }
  return best;
}
