import type { Intersection, IntersectionPlan } from "../model.js";
import { mod } from "../units.js";
import type { CycleWindow } from "./arcs.js";
import type { ProgressionSite } from "./bands.js";

/**
 * A compiled plan's greens in cycle time, as the sequencer runs them (core/sequencer.ts) in a nominal
 * cycle (no offset correction): a group goes green when a stage that serves it starts after one that
 * does not, stays green while the next stage serves it too, and ends its green — starts its yellow —
 * at the planned end of the last stage serving it less its yellow and red clearance (never before its
 * minimum green), so that the next stage can start on time. Cycle time is counted from the corridor's
 * daily sync point: the local cycle (stage 0) starts at offset − reference position, modulo the cycle
 * (core/correction.ts, `lateness`).
 */

/**
 * The group that carries the through (arterial) traffic for a plan: the first vehicle group (in the
 * intersection file's order) of the plan's coordinated stage; null if that stage serves no vehicle group.
 */
export function throughGroup(intersection: Intersection, plan: IntersectionPlan): number | null {
  const stage = plan.stages[plan.coordinatedStage];
  if (!stage) return null;
  for (const gi of stage.groups) {
    if (intersection.groups[gi]?.kind === "vehicle") return gi;
  }
  return null;
}

/** Where stage 0 of the plan's nominal cycle starts, in cycle time from the daily sync point. */
export function cycleStartMs(plan: IntersectionPlan): number {
  return mod(plan.offsetMs - plan.referencePositionMs, plan.cycleMs);
}

/**
 * When group `groupIndex` is green in the plan's nominal cycle, in cycle time from the daily sync point:
 * one window per run of consecutive stages serving it (around the cycle's end too); the whole cycle
 * ({0, C}) if every stage serves it; none if none does.
 */
export function greenWindows(
  intersection: Intersection,
  plan: IntersectionPlan,
  groupIndex: number,
): CycleWindow[] {
  const group = intersection.groups[groupIndex];
  const stages = plan.stages;
  const n = stages.length;
  const serves = (k: number) => stages[mod(k, n)]?.member[groupIndex] === true;
  if (!group || n === 0) return [];
  if (stages.every((_, k) => serves(k))) return [{ startMs: 0, endMs: plan.cycleMs }];
  const startOf: number[] = [];
  let at = 0;
  for (const stage of stages) {
    startOf.push(at);
    at += stage.splitMs;
  }
  const origin = cycleStartMs(plan);
  const windows: CycleWindow[] = [];
  for (let k = 0; k < n; k++) {
    // A run starts at a stage serving the group after one that does not.
    if (!serves(k) || serves(k - 1)) continue;
    let last = k;
    let runEndMs = (startOf[k] as number) + (stages[k]?.splitMs ?? 0);
    while (serves(last + 1)) {
      last++;
      runEndMs += stages[mod(last, n)]?.splitMs ?? 0;
    }
    const runStartMs = startOf[k] as number;
    const greenEndMs = Math.max(
      runEndMs - group.clearanceMs - group.redClearanceMs,
      runStartMs + group.minGoMs,
    );
    windows.push({
      startMs: mod(origin + runStartMs, plan.cycleMs),
      endMs: mod(origin + greenEndMs, plan.cycleMs),
    });
  }
  return windows;
}

/** One site of a corridor's progression: its through group's greens for the plan, at its position. */
export function planSite(
  intersection: Intersection,
  plan: IntersectionPlan,
  positionM: number,
): (ProgressionSite & { readonly throughGroup: string }) | null {
  const gi = throughGroup(intersection, plan);
  const group = gi === null ? undefined : intersection.groups[gi];
  if (gi === null || !group) return null;
  return {
    id: intersection.id,
    positionM,
    green: greenWindows(intersection, plan, gi),
    throughGroup: group.id,
  };
}
