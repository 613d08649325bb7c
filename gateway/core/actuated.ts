import { type GroupDemand, NO_DEMAND } from "./detectors.js";
import type { Intersection, IntersectionPlan, Stage } from "./model.js";

/**
 * The rules of actuated-coordinated operation, as pure functions of the plan, the demand and the
 * cycle's timeline (the sequencer applies them: sequencer.ts).
 *
 * The cycle and each stage's window are computed exactly as for a fixed-time plan (splits, offset,
 * correction), so the cycle boundaries and the coordinated stage's band stay on the corridor's grid.
 * The end of a window is its stage's force-off. A non-coordinated stage is served only when called
 * (or on recall), may start early when the stages before it ended early, gaps out when no vehicle
 * extends it for its passage time, maxes out at its maximum green, and is forced off at the end of its
 * window. Whatever time no called stage can use goes to the coordinated stage: it starts early (early
 * return to green) or rests in green until a call can be served before that stage's force-off.
 */

export type Termination = "gap-out" | "max-out" | "force-off";

export function demandOf(demand: readonly GroupDemand[] | null, g: number): GroupDemand {
  return demand?.[g] ?? NO_DEMAND;
}

/**
 * The groups a stage would serve now, or null when it is not called: a stage without actuation (the
 * coordinated one) serves all its groups every cycle; an actuated one its vehicle groups when any of
 * its groups is called or on recall, and its walks only when a button called them (or on recall).
 */
export function servedIfCalled(
  intersection: Intersection,
  stage: Stage,
  demand: readonly GroupDemand[] | null,
): boolean[] | null {
  const a = stage.actuation;
  if (!a) return [...stage.member];
  const wanted = (g: number) => demandOf(demand, g).call || demandOf(demand, g).recall !== "none";
  const walks = stage.groups.filter((g) => intersection.groups[g]?.kind === "pedestrian");
  const pedestrianRecall = a.pedestrianRecall && walks.length > 0;
  const called = a.recall !== "none" || pedestrianRecall || stage.groups.some(wanted);
  if (!called) return null;
  const served = stage.member.map(
    (m, g) => m && (intersection.groups[g]?.kind === "vehicle" || pedestrianRecall || wanted(g)),
  );
  // A stage of walks only, on recall but with no walk called, would show nothing: it is not served.
  return served.some(Boolean) ? served : null;
}

/** A group's minimum go in a stage: an actuated stage's minimum green counts for its vehicle groups. */
export function minGoIn(intersection: Intersection, stage: Stage, g: number): number {
  const group = intersection.groups[g];
  if (!group) return 0;
  const a = stage.actuation;
  return a && group.kind === "vehicle" ? Math.max(group.minGoMs, a.minGreenMs) : group.minGoMs;
}

/**
 * The shortest a stage serving `served` can run from `startMs`: minimum go, clearance, red clearance.
 * A group already green (it goes on from the stage before) owes only what is left of its minimum.
 */
export function minRunMs(
  intersection: Intersection,
  stage: Stage,
  served: readonly boolean[],
  greenSinceMs: readonly (number | null)[] = [],
  startMs = 0,
): number {
  let longest = 0;
  served.forEach((on, g) => {
    const group = intersection.groups[g];
    if (!on || !group) return;
    const since = greenSinceMs[g];
    const go = minGoIn(intersection, stage, g);
    const owed = since === null || since === undefined ? go : Math.max(0, since + go - startMs);
    longest = Math.max(longest, owed + group.clearanceMs + group.redClearanceMs);
  });
  return longest;
}

/** The longest clearance and red clearance among the groups served: how long before its end a stage must know what follows. */
export function longestClearanceMs(intersection: Intersection, served: readonly boolean[]): number {
  let longest = 0;
  served.forEach((on, g) => {
    const group = intersection.groups[g];
    if (on && group) longest = Math.max(longest, group.clearanceMs + group.redClearanceMs);
  });
  return longest;
}

/** The clearance of the groups that end when `next` follows `served`. */
export function endingClearanceMs(
  intersection: Intersection,
  served: readonly boolean[],
  next: readonly boolean[],
): number {
  return longestClearanceMs(
    intersection,
    served.map((on, g) => on && !next[g]),
  );
}

/** Whether a stage keeps its green to its force-off whatever the detectors say (max recall, or a failed detector on max recall). */
export function onMaxRecall(
  stage: Stage,
  served: readonly boolean[],
  intersection: Intersection,
  demand: readonly GroupDemand[] | null,
): boolean {
  const a = stage.actuation;
  if (!a || a.recall === "max") return true;
  return served.some(
    (on, g) => on && intersection.groups[g]?.kind === "vehicle" && demandOf(demand, g).recall === "max",
  );
}

/** Whether a vehicle extends the stage's green now. */
export function extending(
  intersection: Intersection,
  served: readonly boolean[],
  demand: readonly GroupDemand[] | null,
): boolean {
  return served.some(
    (on, g) => on && intersection.groups[g]?.kind === "vehicle" && demandOf(demand, g).extend,
  );
}

/** Gap-out or max-out of a served actuated stage at `t`, or null while it runs on. */
export function terminationAt(
  stage: Stage,
  run: { readonly goStartMs: number; readonly lastExtendMs: number },
  t: number,
): Exclude<Termination, "force-off"> | null {
  const a = stage.actuation;
  if (!a) return null;
  const green = t - run.goStartMs;
  if (green < a.minGreenMs) return null;
  if (t - run.lastExtendMs >= a.passageMs) return "gap-out";
  return green >= a.maxGreenMs ? "max-out" : null;
}

/** Where each stage's window starts, from the cycle's start and the windows' ends. */
export function windowStartMs(cycleStartMs: number, windowEndsMs: readonly number[], k: number): number {
  return k === 0 ? cycleStartMs : (windowEndsMs[k - 1] as number);
}

/** Each stage's window end, from the cycle's start and this cycle's durations. */
export function windowEnds(cycleStartMs: number, durationsMs: readonly number[]): number[] {
  let at = cycleStartMs;
  return durationsMs.map((d) => (at += d));
}

/** The vehicle groups of a stage: what a termination event names. */
export function vehicleGroupsOf(intersection: Intersection, plan: IntersectionPlan, k: number): number[] {
  return (plan.stages[k]?.groups ?? []).filter((g) => intersection.groups[g]?.kind === "vehicle");
}
