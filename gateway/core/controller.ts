import { type DetectorBankState, startDetectors, stepDetectors } from "./detectors.js";
import { InvariantViolation } from "./invariant.js";
import { flashIsOn, lampsFor } from "./lamps.js";
import {
  abortLampTest,
  faultEndsLampTest,
  type LampTestState,
  lampTestRunning,
  maskForMonitor,
  observeLampTest,
  startLampTest,
  stepLampTest,
} from "./lamp-test.js";
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
  type PreviousRun,
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
  /** The lamp walk test running, or the last one (kept for its report); null: none since the start. */
  readonly lamp: LampTestState | null;
}

export type ControllerEvent =
  | FieldDropped
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
  /** The lamp walk test (core/lamp-test.ts), in scheduled flash only (lampTestRefusal), and its abort. */
  | { readonly type: "lamp-test"; readonly id: string; readonly by: string; readonly stepMs: number }
  | { readonly type: "abort-lamp-test"; readonly by: string }
  /** A maintenance hold of the stage shown, and its release (the sequencer's own events). */
  | Extract<SequencerEvent, { type: "hold" }>
  | Extract<SequencerEvent, { type: "release-hold" }>
  /**
   * Before the first tick: the lamps the field shows (read back without writing), and how the last run
   * on this store ended (absent: unknown, the full start-up).
   */
  | { readonly type: "field-at-start"; readonly observed: readonly Lamps[]; readonly previous?: PreviousRun };
/**
 * The lamps the start-up decided from were dropped by a module's watchdog before the first write (the
 * restart came too close to it): `observed` is what every module shows now. The start-up is decided
 * again from it, the full start-up (what shows is cleared first).
 */
export type FieldDropped = {
  readonly type: "field-dropped";
  readonly observed: readonly Lamps[];
  readonly detail: string;
};

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
    lamp: null,
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
  // A lamp under test ends through its clearances first (the sequencer, in flash, is all-red at once).
  return isStopped(state.seq) && state.written !== null && !lampTestRunning(state.lamp);
}

/** Malfunction flash: every vehicle group red flashing, pedestrian heads dark. */
export function faultFlashAspects(intersection: Intersection): Aspect[] {
  return intersection.groups.map((g) => (g.kind === "vehicle" ? "red-flash" : "dark"));
}

export function stepController(state: ControllerState, event: ControllerEvent, now: Now): ControllerStep {
  const effects: ControllerEffect[] = [];
  const intersection = state.seq.intersection;
  if (lampTestRunning(state.lamp) && (event.type === "leave-flash" || event.type === "stop"))
    return duringLampTest(state, state.lamp, event, now, effects);
  switch (event.type) {
    case "tick":
      return tick(state, now, effects);
    case "readback": {
      if (!state.written || state.mon.latch) return { state, effects };
      const { lamps } = state.written;
      const lamp = lampTestRunning(state.lamp)
        ? observeLampTest(state.lamp, intersection, event.observed, lamps)
        : state.lamp;
      const seen = lampTestRunning(lamp) ? maskForMonitor(lamp, event.observed, lamps) : event.observed;
      const verdict = checkObserved(state.mon, seen, lamps, state.written.aspects, now);
      return latched({ ...state, lamp, mon: verdict.state }, verdict.fault, now, effects);
    }
    case "lamp-test":
      if (lampTestRefusal(state) !== null) return { state, effects };
      return { state: { ...state, lamp: startLampTest(intersection, event, now.wallMs) }, effects };
    case "abort-lamp-test":
      if (!lampTestRunning(state.lamp)) return { state, effects };
      return { state: { ...state, lamp: abortLampTest(state.lamp, event.by, "operator") }, effects };
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
    case "field-dropped":
      if (state.mon.latch) return { state, effects };
      return runSequencer(
        // What the tick before computed was not written where the lamps dropped: the monitor's history of
        // it goes, as at a start (the full start-up's flash and all-red cover what the module dropped).
        { ...state, written: null, mon: startMonitor(intersection, null) },
        {
          type: "re-adopt",
          intervals: intervalsShown(intersection, event.observed),
          reason: `a module's watchdog dropped the lamps before the first write (${event.detail})`,
        },
        now,
        effects,
        intersection,
      );
    case "field-at-start":
      if (state.written || state.mon.latch) return { state, effects };
      return runSequencer(
        state,
        {
          type: "adopt",
          intervals: intervalsShown(intersection, event.observed),
          allRed: allRedShown(intersection, event.observed),
          lit: event.observed.some((l) => l.red || l.yellow || l.green),
          ...(event.previous ? { previous: event.previous } : {}),
        },
        now,
        effects,
        intersection,
      );
    case "schedule-plan":
    case "withdraw-plan":
    case "enter-flash":
    case "leave-flash":
    case "stop":
    case "hold":
    case "release-hold":
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

/** Every vehicle head shows steady red alone, and no WALK is lit: what a clean stop leaves. */
export function allRedShown(intersection: Intersection, observed: readonly Lamps[]): boolean {
  return intersection.groups.every((g, i) => {
    const lamps = observed[i];
    if (!lamps) return false;
    return g.kind === "vehicle" ? lamps.red && !lamps.yellow && !lamps.green : !lamps.green;
  });
}

function tick(state: ControllerState, now: Now, effects: ControllerEffect[]): ControllerStep {
  const intersection = state.seq.intersection;
  if (state.mon.latch) return writeFaultFlash(endLampTestByFault(state, now), now, effects);
  const sequenced = runSequencer(state, { type: "tick" }, now, effects, intersection);
  if (sequenced.state.mon.latch) return { ...sequenced, state: endLampTestByFault(sequenced.state, now) };
  const advanced = lampTestTick(sequenced, now, effects);
  const { aspects } = advanced;
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
    const reloaded = step.state.intersection;
    if (reloaded === state.seq.intersection) return { state: { ...state, seq: step.state }, effects };
    // A reloaded configuration took effect with its plan: the monitor checks against it from now on (its
    // history carries over: same groups, same order), and detectors start afresh if their list changed.
    const sameDetectors =
      (reloaded.detectors ?? []).length === (state.seq.intersection.detectors ?? []).length;
    return {
      state: {
        ...state,
        seq: step.state,
        mon: { ...state.mon, intersection: reloaded },
        det: sameDetectors ? state.det : startDetectors(reloaded, now.monoMs),
      },
      effects,
    };
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

/**
 * Why a lamp walk test cannot start now, or null: only from scheduled flash fully entered (an operator's
 * flash, not a fault's), not while one runs, not while leaving flash or stopping.
 */
export function lampTestRefusal(state: ControllerState): string | null {
  const { seq, mon } = state;
  if (mon.latch)
    return `a fault is latched (${mon.latch.kind}): a lamp test runs from scheduled flash only; reset the fault, then flash on`;
  if (lampTestRunning(state.lamp))
    return `a lamp test is already running (by ${state.lamp.by}): wait for its report, or abort it (greenwave lamp-test --abort)`;
  if (seq.stopRequested) return "this gateway is stopping";
  if (seq.mode === "clearing-to-flash")
    return "the intersection is still entering flash through its clearances: try again once status shows it in flash";
  if (seq.mode !== "flash" || seq.flashRequest === "leave")
    return `the intersection is not in scheduled flash (${controllerMode(state)}): put it in flash first (greenwave flash on)`;
  return null;
}

/**
 * The tick's aspects: the sequencer's, or the lamp test's picture while one runs. A test that is over
 * hands the lamps back to the sequencer's flash at once, and then passes on a leave-flash asked for
 * meanwhile (the sequencer leaves flash through all-red from the next tick).
 */
function lampTestTick(
  step: ControllerStep,
  now: Now,
  effects: ControllerEffect[],
): ControllerStep & { readonly aspects: readonly Aspect[] } {
  const { state } = step;
  if (!lampTestRunning(state.lamp)) return { ...step, aspects: aspectsOf(state.seq) };
  const intersection = state.seq.intersection;
  const lamp = stepLampTest(state.lamp, intersection, now);
  const next = { ...state, lamp: lamp.state };
  if (lamp.aspects) return { state: next, effects, aspects: lamp.aspects };
  if (lamp.state.then === null) return { state: next, effects, aspects: aspectsOf(next.seq) };
  const left = runSequencer(next, { type: lamp.state.then }, now, effects, intersection);
  return { ...left, aspects: aspectsOf(left.state.seq) };
}

/**
 * Leaving flash or stopping while a lamp is under test: the test is aborted (the lamp ends through its
 * minimum and clearances). A stop goes on to the sequencer at once — in flash it is all-red at once, and
 * readyToStop waits for the test to end; leaving flash waits for the test, so that no cycle starts under
 * the lamp test's picture.
 */
function duringLampTest(
  state: ControllerState,
  lamp: LampTestState,
  event: Extract<ControllerEvent, { type: "leave-flash" | "stop" }>,
  now: Now,
  effects: ControllerEffect[],
): ControllerStep {
  const why = event.type === "stop" ? "stop" : "leave-flash";
  const aborted = abortLampTest(lamp, lamp.by, why);
  if (event.type === "leave-flash")
    return { state: { ...state, lamp: { ...aborted, then: "leave-flash" } }, effects };
  return runSequencer({ ...state, lamp: aborted }, event, now, effects, state.seq.intersection);
}

function endLampTestByFault(state: ControllerState, now: Now): ControllerState {
  if (!lampTestRunning(state.lamp) || !state.mon.latch) return state;
  const lamp = faultEndsLampTest(state.lamp, state.seq.intersection, state.mon.latch.message, now.wallMs);
  return { ...state, lamp };
}
