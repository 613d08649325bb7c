import { type DetectorBankState, startDetectors, stepDetectors } from "./detectors.js";
import { InvariantViolation } from "./invariant.js";
import { flashIsOn, lampsFor } from "./lamps.js";
import type { Aspect, Intersection, IntersectionPlan, Lamps } from "./model.js";
import {
  checkCommanded,
  checkObserved,
  type FaultLatch,
  latchFault,
  type MonitorState,
  resetMonitor,
  startMonitor,
} from "./monitor.js";
import {
  aspectsOf,
  type GroupInterval,
  isStopped,
  type ReportedMode,
  reportedMode,
  type SequencerEvent,
  type SequencerState,
  type SignalEvent,
  startSequencer,
  stepSequencer,
} from "./sequencer.js";
import type { Now } from "./time.js";

/**
 * One intersection's signal controller: the sequencer behind the conflict monitor. A pure state
 * machine `(state, event, now) -> {state, effects}`; the shell writes the outputs, force-writes the
 * latch, and feeds back what the field reports.
 */

export interface ControllerState {
  readonly seq: SequencerState;
  readonly mon: MonitorState;
  /** What was last written, for the readback check. */
  readonly written: { readonly aspects: readonly Aspect[]; readonly lamps: readonly Lamps[] } | null;
  /** The detector inputs and the calls they hold (core/detectors.ts). */
  readonly det: DetectorBankState;
}

export type ControllerEvent =
  | { readonly type: "tick" }
  | { readonly type: "readback"; readonly observed: readonly Lamps[] }
  /** The detector inputs as read with the lamps, by detector index (null: no reading this time). */
  | { readonly type: "detectors"; readonly readings: readonly (boolean | null)[] }
  /** A plan change, with the corridor transaction that committed it: the sequencer's own event. */
  | Extract<SequencerEvent, { type: "schedule-plan" }>
  | Extract<SequencerEvent, { type: "withdraw-plan" }>
  | { readonly type: "enter-flash" }
  | { readonly type: "leave-flash" }
  /** The process is stopping: end every interval through its clearances to all-red. */
  | { readonly type: "stop" }
  | { readonly type: "device-lost"; readonly device: string; readonly detail: string }
  | { readonly type: "operator-reset"; readonly by: string }
  /** Before the first tick: the lamps the field shows (read back without writing). */
  | { readonly type: "field-at-start"; readonly observed: readonly Lamps[] };

export type ControllerEffect =
  /** Write these lamps now. Always preceded, when a fault latched in the same step, by persist-latch. */
  | { readonly type: "write-outputs"; readonly aspects: readonly Aspect[]; readonly lamps: readonly Lamps[] }
  /** Force-write the latch: it must survive a restart. */
  | { readonly type: "persist-latch"; readonly latch: FaultLatch }
  | { readonly type: "clear-latch"; readonly by: string }
  | { readonly type: "signal"; readonly event: SignalEvent };

export interface ControllerStep {
  readonly state: ControllerState;
  readonly effects: readonly ControllerEffect[];
}

export type ControllerMode = ReportedMode | "fault";

export function startController(
  intersection: Intersection,
  plan: IntersectionPlan,
  restoredLatch: FaultLatch | null,
  now: Now,
): ControllerState {
  return {
    seq: startSequencer(intersection, plan, now),
    mon: startMonitor(intersection, restoredLatch),
    written: null,
    det: startDetectors(intersection, now.monoMs),
  };
}

export function controllerMode(state: ControllerState): ControllerMode {
  return state.mon.latch ? "fault" : reportedMode(state.seq);
}

/**
 * After a stop was asked for: may the lamps now go to the module's safe state (steady red) without
 * cutting anything? Yes once all-red has been written, or at once in fault flash (nothing runs).
 */
export function readyToStop(state: ControllerState): boolean {
  if (state.mon.latch) return true;
  return isStopped(state.seq) && state.written !== null;
}

/** Malfunction flash: every vehicle group red flashing, pedestrian heads dark. */
export function faultFlashAspects(intersection: Intersection): Aspect[] {
  return intersection.groups.map((g) => (g.kind === "vehicle" ? "red-flash" : "dark"));
}

export function stepController(state: ControllerState, event: ControllerEvent, now: Now): ControllerStep {
  const effects: ControllerEffect[] = [];
  const intersection = state.seq.intersection;
  switch (event.type) {
    case "tick":
      return tick(state, now, effects);
    case "readback": {
      if (!state.written || state.mon.latch) return { state, effects };
      const verdict = checkObserved(
        state.mon,
        event.observed,
        state.written.lamps,
        state.written.aspects,
        now,
      );
      return latched({ ...state, mon: verdict.state }, verdict.fault, now, effects);
    }
    case "device-lost": {
      const verdict = latchFault(state.mon, {
        kind: "device-lost",
        groups: [],
        message: `device ${event.device} lost: ${event.detail}`,
        atWallMs: now.wallMs,
      });
      return latched({ ...state, mon: verdict.state }, verdict.fault, now, effects);
    }
    case "operator-reset": {
      if (!state.mon.latch) return { state, effects };
      effects.push({ type: "clear-latch", by: event.by });
      const restarted = stepSequencer(state.seq, { type: "restart" }, now);
      for (const e of restarted.events) effects.push({ type: "signal", event: e });
      return {
        state: { ...state, seq: restarted.state, mon: resetMonitor(state.mon), written: null },
        effects,
      };
    }
    case "detectors": {
      if ((intersection.detectors ?? []).length === 0) return { state, effects };
      const green = state.seq.groups.map((g) => g.interval === "go");
      const read = stepDetectors(intersection, state.det, event.readings, green, now.monoMs);
      for (const e of read.events) effects.push({ type: "signal", event: e });
      return runSequencer(
        { ...state, det: read.state },
        { type: "demand", groups: read.demand },
        now,
        effects,
        intersection,
      );
    }
    case "field-at-start":
      if (state.written || state.mon.latch) return { state, effects };
      return runSequencer(
        state,
        { type: "adopt", intervals: intervalsShown(intersection, event.observed) },
        now,
        effects,
        intersection,
      );
    case "schedule-plan":
    case "withdraw-plan":
    case "enter-flash":
    case "leave-flash":
    case "stop":
      // The same events in the sequencer's vocabulary: passed on as they are.
      return runSequencer(state, event, now, effects, intersection);
  }
}

/**
 * Which interval each group is in, by its lamps: a vehicle green is go and yellow is clearance; a WALK
 * is go. A pedestrian clearance cannot be read back: its module froze the flashing DON'T WALK lit or
 * dark when the process died. It is not re-shown; what protects those pedestrians is that no
 * conflicting movement gets green before the start-up flash and all-red have run.
 */
export function intervalsShown(intersection: Intersection, observed: readonly Lamps[]): GroupInterval[] {
  return intersection.groups.map((g, i) => {
    const lamps = observed[i];
    if (!lamps) return "rest";
    if (lamps.green) return "go";
    return g.kind === "vehicle" && lamps.yellow ? "clearance" : "rest";
  });
}

function tick(state: ControllerState, now: Now, effects: ControllerEffect[]): ControllerStep {
  const intersection = state.seq.intersection;
  if (state.mon.latch) return writeFaultFlash(state, now, effects);
  const advanced = runSequencer(state, { type: "tick" }, now, effects, intersection);
  if (advanced.state.mon.latch) return advanced;
  const aspects = aspectsOf(advanced.state.seq);
  const verdict = checkCommanded(advanced.state.mon, aspects, now);
  if (verdict.fault) return latched({ ...advanced.state, mon: verdict.state }, verdict.fault, now, effects);
  const on = flashIsOn(now.monoMs, intersection.flashPeriodMs);
  const lamps = aspects.map((a) => lampsFor(a, on));
  effects.push({ type: "write-outputs", aspects, lamps });
  return { state: { ...advanced.state, mon: verdict.state, written: { aspects, lamps } }, effects };
}

function runSequencer(
  state: ControllerState,
  event: SequencerEvent,
  now: Now,
  effects: ControllerEffect[],
  intersection: Intersection,
): ControllerStep {
  try {
    const step = stepSequencer(state.seq, event, now);
    for (const e of step.events) effects.push({ type: "signal", event: e });
    return { state: { ...state, seq: step.state }, effects };
  } catch (error) {
    if (!(error instanceof InvariantViolation)) throw error;
    const verdict = latchFault(state.mon, {
      kind: "internal",
      groups: [],
      message: `sequencer invariant broken at ${intersection.id}: ${error.message}`,
      atWallMs: now.wallMs,
    });
    return latched({ ...state, mon: verdict.state }, verdict.fault, now, effects);
  }
}

function latched(
  state: ControllerState,
  fault: FaultLatch | null,
  now: Now,
  effects: ControllerEffect[],
): ControllerStep {
  if (!fault) return { state, effects };
  effects.push({ type: "persist-latch", latch: fault });
  return writeFaultFlash(state, now, effects);
}

function writeFaultFlash(state: ControllerState, now: Now, effects: ControllerEffect[]): ControllerStep {
  const intersection = state.seq.intersection;
  const aspects = faultFlashAspects(intersection);
  const on = flashIsOn(now.monoMs, intersection.flashPeriodMs);
  const lamps = aspects.map((a) => lampsFor(a, on));
  effects.push({ type: "write-outputs", aspects, lamps });
  return { state: { ...state, written: { aspects, lamps } }, effects };
}
