import { minGoIn } from "./actuated.js";
import { lateness } from "./correction.js";
import { IN_STEP_TOLERANCE_MS, type Intersection, type IntersectionPlan } from "./model.js";
import type { GroupInterval, PreviousRun } from "./sequencer-types.js";

/**
 * Where a sequence begins, decided from the plan and the clock alone: the cycle position is a pure
 * function of both, so a start-up enters the cycle where the offset puts it instead of correcting from
 * an arbitrary start over several cycles; and a gateway restarted while its module still shows the
 * stage the clock says takes the lamps over there, instead of flashing the intersection.
 */

/** What a stage's groups need when they start afresh: minimum go (or walk), clearance, red clearance. */
export function freshStartMs(intersection: Intersection, plan: IntersectionPlan, k: number): number {
  const stage = plan.stages[k];
  if (!stage) return Number.POSITIVE_INFINITY;
  let need = stage.minMs;
  for (const g of stage.groups) {
    const group = intersection.groups[g];
    if (group)
      need = Math.max(need, minGoIn(intersection, stage, g) + group.clearanceMs + group.redClearanceMs);
  }
  return need;
}

export interface CycleEntry {
  /** The stage to start with: its groups go now, and it ends with its window. */
  readonly index: number;
  /**
   * How far `wallMs` lies into the plan's ideal cycle: the cycle's windows are laid from `now −
   * positionMs` (negative: the next cycle's first stage starts early, its windows laid from the next
   * ideal start).
   */
  readonly positionMs: number;
}

/**
 * Entering at `wallMs`: the stage whose window holds the cycle position, if what is left of that window
 * holds a fresh start of its groups (`slackMs` for the ticks a start may lose); else the first later
 * stage whose window, started now, does (it runs longer than its split: never shorter), the next
 * cycle's first stage included. Null: start a cycle now — the position is within the in-step
 * tolerance of a boundary, or nothing fits (a cycle started now is then a little early, and corrected).
 */
export function cycleEntry(
  intersection: Intersection,
  plan: IntersectionPlan,
  wallMs: number,
  slackMs: number,
): CycleEntry | null {
  const positionMs = lateness(plan, wallMs);
  if (positionMs <= IN_STEP_TOLERANCE_MS || plan.cycleMs - positionMs <= IN_STEP_TOLERANCE_MS) return null;
  let windowEndMs = 0;
  for (let k = 0; k < plan.stages.length; k++) {
    windowEndMs += (plan.stages[k] as IntersectionPlan["stages"][number]).splitMs;
    if (windowEndMs <= positionMs) continue;
    if (windowEndMs - positionMs >= freshStartMs(intersection, plan, k) + slackMs)
      return { index: k, positionMs };
  }
  // In the tail of the last window: the next cycle's first stage, started now, runs to its window's end
  // (the cycle's windows are laid from the next ideal start, a little ahead).
  const first = (plan.stages[0] as IntersectionPlan["stages"][number]).splitMs;
  if (plan.cycleMs + first - positionMs >= freshStartMs(intersection, plan, 0) + slackMs)
    return { index: 0, positionMs: positionMs - plan.cycleMs };
  return null;
}

/** What a stage's start may lose to ticks (the sequencer's own slack): the room cycleEntry keeps. */
export const ENTRY_SLACK_MS = 200;

/** The stage whose window holds the cycle position `positionMs` (in [0, cycle)). */
function stageAt(plan: IntersectionPlan, positionMs: number): number {
  let windowEndMs = 0;
  for (let k = 0; k < plan.stages.length; k++) {
    windowEndMs += (plan.stages[k] as IntersectionPlan["stages"][number]).splitMs;
    if (positionMs < windowEndMs) return k;
  }
  return plan.stages.length - 1;
}

export type StartUp =
  /** Take the lamps over as they are: `index` is shown, by the groups `served`. */
  | {
      readonly how: "resumed";
      readonly index: number;
      readonly served: readonly boolean[];
      readonly positionMs: number;
      readonly reason: string;
    }
  /** The last run stopped cleanly and left all-red: straight to the start-up all-red, no flash. */
  | { readonly how: "warm"; readonly reason: string }
  /** The full start-up: what is shown is cleared, then flash and all-red. */
  | { readonly how: "cold"; readonly reason: string };

/**
 * How to start, from what the lamps show before the first write and how the last run ended.
 *
 * Resumed only after an abrupt end of a run with the same configuration and plan (the shell proves
 * both), when the lamps show the go state of the stage the clock says — within the in-step tolerance
 * either side — and nothing else: no yellow (a clearance under way is cleared, never taken over), no
 * green or WALK outside that stage. A module whose watchdog dropped the lamps shows its safe state,
 * which is no stage's go state, so this holds only within its watchdog window. What the readback cannot
 * see — a pedestrian clearance frozen as steady DON'T WALK — the sequencer covers by starting no
 * group before every group at rest could have finished its clearance (SequencerState.noGoBeforeMs).
 */
export function decideStartUp(
  intersection: Intersection,
  plan: IntersectionPlan,
  intervals: readonly GroupInterval[],
  allRedShown: boolean,
  previous: PreviousRun,
  wallMs: number,
): StartUp {
  const showing = intervals.some((i) => i === "go" || i === "clearance");
  if (previous === "stopped-clean") {
    if (allRedShown)
      return { how: "warm", reason: "the last run stopped cleanly and the lamps still show all-red" };
    return { how: "cold", reason: "the last run stopped cleanly, but the lamps no longer show all-red" };
  }
  if (previous !== "ended-abruptly")
    return { how: "cold", reason: "nothing proves how the last run ended with this configuration and plan" };
  if (!showing)
    return {
      how: "cold",
      reason: "the lamps show no running stage (the module's watchdog dropped them, or nothing ran)",
    };
  if (intervals.some((i) => i === "clearance"))
    return { how: "cold", reason: "the lamps show a clearance under way: it is cleared, not taken over" };
  const positionMs = lateness(plan, wallMs);
  const go = intervals.map((i) => i === "go");
  const shows = (k: number) => {
    const stage = plan.stages[k] as IntersectionPlan["stages"][number];
    return go.every((on, g) => !on || stage.member[g]);
  };
  const clockStages = new Set([
    stageAt(plan, positionMs),
    stageAt(plan, (positionMs + plan.cycleMs - IN_STEP_TOLERANCE_MS) % plan.cycleMs),
    stageAt(plan, (positionMs + IN_STEP_TOLERANCE_MS) % plan.cycleMs),
  ]);
  const resumed = (k: number, atMs: number, where: string): StartUp => ({
    how: "resumed",
    index: k,
    served: go,
    positionMs: atMs,
    reason: `the lamps show stage ${(plan.stages[k] as IntersectionPlan["stages"][number]).id} of plan ${plan.planId}, ${where}`,
  });
  for (const k of clockStages) if (shows(k)) return resumed(k, positionMs, "where the clock puts the cycle");
  // A stage of the next cycle started before its boundary: the first stage, entered early by a start-up
  // in the last window's tail; an actuated plan's stages up to its coordinated one, started early, and
  // its coordinated stage resting in green across the boundary (or before its band, its side stages
  // skipped). Taken over on the cycle it belongs to.
  const clock = stageAt(plan, positionMs);
  const c = plan.coordinatedStage;
  const actuated = plan.stages.some((st) => st.actuation !== undefined);
  const last = plan.stages.length - 1;
  // A fixed-time plan starts its first stage early only when a start-up entered the last window's tail
  // (cycleEntry): anything earlier is a dead process that ran behind the clock, not taken over.
  const enteredEarly =
    clock === last &&
    plan.cycleMs - positionMs <=
      freshStartMs(intersection, plan, last) + ENTRY_SLACK_MS + IN_STEP_TOLERANCE_MS;
  for (let k = 0; k < plan.stages.length; k++) {
    if (!shows(k)) continue;
    if (k < clock && ((k === 0 && enteredEarly) || (actuated && k <= c)))
      return resumed(k, positionMs - plan.cycleMs, "of the next cycle, started early");
    if (actuated && k === c && k > clock) return resumed(k, positionMs, "resting before its band");
  }
  const shown = intersection.groups.filter((_, g) => go[g]).map((g) => g.id);
  const expected = (plan.stages[stageAt(plan, positionMs)] as IntersectionPlan["stages"][number]).id;
  return {
    how: "cold",
    reason: `the lamps show ${shown.join(", ")} going, not stage ${expected} where the clock puts plan ${plan.planId}`,
  };
}
