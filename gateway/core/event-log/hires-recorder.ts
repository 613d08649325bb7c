import { type Aspect, type Intersection, type IntersectionPlan, phaseNumber } from "../model.js";
import type { GroupInterval } from "../sequencer-types.js";
import {
  clampParam,
  type FlashStatus,
  type HiResEvent,
  IndianaCode,
  STOP_PARAMETER,
  toResolution,
} from "./indiana.js";

/**
 * The high-resolution event log as a pure machine: it watches what the controller writes, tick by
 * tick, and answers with the Indiana enumeration rows that the change means. It reads only what it is
 * given (the aspects written, the sequencer's interval of each group, the plan in force, why the unit
 * flashes), so the log says what the lamps were told, at the instant they were told.
 */

/** Where a signal group is, as the log counts it. `off`: dark or flashing (no phase events then). */
type LoggedInterval =
  "green" | "yellow" | "red-clearance" | "red" | "walk" | "ped-clearance" | "dont-walk" | "off";

export interface HiResRecorderState {
  /** By group index; null before the first observation. */
  readonly groups: readonly LoggedInterval[] | null;
  readonly flash: FlashStatus | null;
  /** The plan last logged (131–133), by identity. */
  readonly plan: { readonly id: string; readonly version: number } | null;
  /** The sequencer's cycle count last seen: a new cycle is a cycle boundary (150). */
  readonly cycles: number | null;
}

export const INITIAL_RECORDER: HiResRecorderState = { groups: null, flash: null, plan: null, cycles: null };

/** One tick's output, with what the log needs to name it. */
export interface HiResObservation {
  readonly aspects: readonly Aspect[];
  /** The sequencer's interval of each group: tells a red clearance from a red rest. */
  readonly intervals: readonly GroupInterval[];
  /** Why the unit flashes now (FlashStatus.NOT_FLASH when it does not). */
  readonly flash: FlashStatus;
  readonly plan: IntersectionPlan;
  /** Whether the plan is being run (sequencing), not only held while the unit flashes or starts. */
  readonly sequencing: boolean;
  readonly cycles: number;
}

export interface HiResStep {
  readonly state: HiResRecorderState;
  readonly events: readonly HiResEvent[];
}

function loggedInterval(aspect: Aspect, interval: GroupInterval | undefined): LoggedInterval {
  switch (aspect) {
    case "green":
      return "green";
    case "yellow":
      return "yellow";
    case "red":
      return interval === "red-clearance" ? "red-clearance" : "red";
    case "walk":
      return "walk";
    case "ped-clearance":
      return "ped-clearance";
    case "dont-walk":
      return "dont-walk";
    default:
      return "off";
  }
}

/**
 * The rows for one group moving from one logged interval to another. A change the sequence never
 * makes on its own (a green cut to red by a fault) still writes the green's termination, so that an
 * analysis never sees a green without its end.
 */
function transitionCodes(from: LoggedInterval, to: LoggedInterval): number[] {
  if (from === to) return [];
  switch (to) {
    case "green":
      return [IndianaCode.PHASE_BEGIN_GREEN];
    case "yellow":
      return from === "green"
        ? [IndianaCode.PHASE_GREEN_TERMINATION, IndianaCode.PHASE_BEGIN_YELLOW_CLEARANCE]
        : [IndianaCode.PHASE_BEGIN_YELLOW_CLEARANCE];
    case "red-clearance":
      return from === "yellow"
        ? [IndianaCode.PHASE_END_YELLOW_CLEARANCE, IndianaCode.PHASE_BEGIN_RED_CLEARANCE]
        : from === "green"
          ? [IndianaCode.PHASE_GREEN_TERMINATION, IndianaCode.PHASE_BEGIN_RED_CLEARANCE]
          : [IndianaCode.PHASE_BEGIN_RED_CLEARANCE];
    case "red":
      if (from === "red-clearance") return [IndianaCode.PHASE_END_RED_CLEARANCE];
      // No red clearance configured: the yellow's end is the red clearance's begin and end at once.
      if (from === "yellow")
        return [
          IndianaCode.PHASE_END_YELLOW_CLEARANCE,
          IndianaCode.PHASE_BEGIN_RED_CLEARANCE,
          IndianaCode.PHASE_END_RED_CLEARANCE,
        ];
      if (from === "green") return [IndianaCode.PHASE_GREEN_TERMINATION];
      return [];
    case "walk":
      return [IndianaCode.PEDESTRIAN_BEGIN_WALK];
    case "ped-clearance":
      return [IndianaCode.PEDESTRIAN_BEGIN_CLEARANCE];
    case "dont-walk":
      return from === "walk" || from === "ped-clearance"
        ? [IndianaCode.PEDESTRIAN_BEGIN_SOLID_DONT_WALK]
        : [];
    case "off":
      // Into flash or dark: the flash status row (173) says so; a green cut by it still ends.
      return from === "green" ? [IndianaCode.PHASE_GREEN_TERMINATION] : [];
  }
}

function planRows(plan: IntersectionPlan, atMs: number): HiResEvent[] {
  return [
    { atMs, code: IndianaCode.COORD_PATTERN_CHANGE, param: clampParam(plan.pattern ?? 0) },
    { atMs, code: IndianaCode.CYCLE_LENGTH_CHANGE, param: clampParam(plan.cycleMs / 1000) },
    { atMs, code: IndianaCode.OFFSET_LENGTH_CHANGE, param: clampParam(plan.offsetMs / 1000) },
  ];
}

/**
 * One observation: the rows it means, timestamped at `wallMs` to the log's resolution. Order within
 * one instant: flash status, plan, cycle boundary, then the groups in index order (ends before
 * begins, as the transitions list them).
 */
export function recordHiRes(
  intersection: Intersection,
  state: HiResRecorderState,
  observation: HiResObservation,
  wallMs: number,
): HiResStep {
  const atMs = toResolution(wallMs);
  const events: HiResEvent[] = [];
  if (observation.flash !== state.flash)
    events.push({ atMs, code: IndianaCode.UNIT_FLASH_STATUS_CHANGE, param: observation.flash });
  const plan = observation.plan;
  const planChanged =
    observation.sequencing &&
    (state.plan === null || state.plan.id !== plan.planId || state.plan.version !== plan.version);
  if (planChanged) events.push(...planRows(plan, atMs));
  const newCycle = observation.sequencing && state.cycles !== null && observation.cycles > state.cycles;
  if (newCycle) events.push({ atMs, code: IndianaCode.COORD_CYCLE_STATE_CHANGE, param: 0 });
  const groups = intersection.groups.map((_, i) =>
    loggedInterval(observation.aspects[i] ?? "dark", observation.intervals[i]),
  );
  groups.forEach((to, i) => {
    const from = state.groups?.[i] ?? "off";
    const phase = phaseNumber(intersection, i);
    for (const code of transitionCodes(from, to)) events.push({ atMs, code, param: phase });
  });
  return {
    state: {
      groups,
      flash: observation.flash,
      plan: planChanged ? { id: plan.planId, version: plan.version } : state.plan,
      cycles: observation.sequencing ? observation.cycles : state.cycles,
    },
    events,
  };
}

/** The rows of a gateway starting (184) and stopping in order (182, parameter 1). */
export function startRow(wallMs: number): HiResEvent {
  return { atMs: toResolution(wallMs), code: IndianaCode.POWER_RESTORED, param: 0 };
}

export function stopRow(wallMs: number): HiResEvent {
  return { atMs: toResolution(wallMs), code: IndianaCode.POWER_FAILURE_DETECTED, param: STOP_PARAMETER };
}
