import { invariant } from "./invariant.js";
import { IN_STEP_TOLERANCE_MS, type IntersectionPlan } from "./model.js";
import { sinceSync } from "./time/time-reference.js";
import { mod } from "./units.js";

export interface CyclePlan {
  /** The duration of each stage in this cycle, after correction. */
  readonly durationsMs: readonly number[];
  /**
   * How far this cycle's start is from the ideal one: positive when late (behind the green wave),
   * negative when early. Zero is in step.
   */
  readonly offsetErrorMs: number;
  /** Milliseconds added to (positive) or removed from (negative) this cycle. */
  readonly correctionMs: number;
  readonly inStep: boolean;
}

/**
 * How late a cycle starting at this wall-clock instant is against the plan's ideal cycle starts, which
 * fall at the day's sync point + offset − reference position + k × cycle (the grid starts afresh at
 * each day's sync point: core/time/time-reference.ts). Result in [0, cycle).
 */
export function lateness(plan: IntersectionPlan, startWallMs: number): number {
  const shift = mod(plan.offsetMs - plan.referencePositionMs, plan.cycleMs);
  return mod(sinceSync(plan, startWallMs) - shift, plan.cycleMs);
}

/**
 * Plans one cycle starting at `startWallMs`: by how much to lengthen or shorten it to bring the
 * intersection back in step, within the plan's correction limits, and how the change is spread over
 * the stages (never below a stage's minimum).
 */
export function planCycle(plan: IntersectionPlan, startWallMs: number): CyclePlan {
  const c = plan.cycleMs;
  const late = lateness(plan, startWallMs);
  const early = late === 0 ? 0 : c - late;
  const offsetErrorMs = late <= c / 2 ? late : -early;

  const correctionMs = correctionFor(plan, late);
  const durationsMs = stageDurations(plan, correctionMs);
  return {
    durationsMs,
    offsetErrorMs,
    correctionMs,
    inStep: Math.min(late, early) <= IN_STEP_TOLERANCE_MS,
  };
}

/**
 * The correction of a cycle that starts `late` ms late (in [0, cycle)): milliseconds to add (positive)
 * or remove (negative), within the plan's limits. The one decision the sequencer and the convergence
 * bound (convergence.ts) share.
 */
export function correctionFor(plan: IntersectionPlan, late: number): number {
  const c = plan.cycleMs;
  const early = late === 0 ? 0 : c - late;
  // Never -0: events carry the correction as JSON, which has no negative zero.
  if (late <= IN_STEP_TOLERANCE_MS) return late === 0 ? 0 : -late;
  if (early <= IN_STEP_TOLERANCE_MS) return early;
  if (plan.correction.mode === "dwell") return Math.min(early, plan.correction.maxDwellMs);
  const { maxShortenMs, maxLengthenMs } = plan.correction;
  const shortenCycles = Math.ceil(late / maxShortenMs);
  const lengthenCycles = Math.ceil(early / maxLengthenMs);
  return shortenCycles <= lengthenCycles ? -Math.min(late, maxShortenMs) : Math.min(early, maxLengthenMs);
}

/** Each stage's duration in a cycle changed by `correctionMs` (never below a stage's minimum). */
export function stageDurations(plan: IntersectionPlan, correctionMs: number): number[] {
  return correctionMs >= 0 ? lengthen(plan, correctionMs) : shorten(plan, -correctionMs);
}

function lengthen(plan: IntersectionPlan, addMs: number): number[] {
  const durations = plan.stages.map((s) => s.splitMs);
  if (plan.correction.mode === "dwell") {
    // Dwell holds the coordinated stage: the extra time all goes to its green.
    durations[plan.coordinatedStage] = (durations[plan.coordinatedStage] as number) + addMs;
    return durations;
  }
  let given = 0;
  plan.stages.forEach((s, k) => {
    const share = Math.floor((addMs * s.splitMs) / plan.cycleMs);
    durations[k] = (durations[k] as number) + share;
    given += share;
  });
  durations[plan.coordinatedStage] = (durations[plan.coordinatedStage] as number) + (addMs - given);
  return durations;
}

function shorten(plan: IntersectionPlan, cutMs: number): number[] {
  const slack = plan.stages.map((s) => s.splitMs - s.minMs);
  const totalSlack = slack.reduce((a, b) => a + b, 0);
  invariant(
    totalSlack >= cutMs,
    () => `plan ${plan.planId}: cannot shorten a cycle by ${cutMs} ms with ${totalSlack} ms of slack`,
  );
  const durations = plan.stages.map((s) => s.splitMs);
  let cut = 0;
  slack.forEach((sl, k) => {
    const share = Math.floor((cutMs * sl) / totalSlack);
    durations[k] = (durations[k] as number) - share;
    cut += share;
  });
  for (let k = 0; cut < cutMs && k < durations.length; k++) {
    const stage = plan.stages[k];
    if (!stage) continue;
    const room = (durations[k] as number) - stage.minMs;
    const take = Math.min(room, cutMs - cut);
    durations[k] = (durations[k] as number) - take;
    cut += take;
  }
  return durations;
}
