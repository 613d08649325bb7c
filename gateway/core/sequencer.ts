import {
  endingClearanceMs,
  extending,
  longestClearanceMs,
  minGoIn,
  minRunMs,
  onMaxRecall,
  servedIfCalled,
  terminationAt,
  type Termination,
  vehicleGroupsOf,
  windowEnds,
  windowStartMs,
} from "./actuated.js";
import { planCycle } from "./correction.js";
import { invariant } from "./invariant.js";
import { type Aspect, IN_STEP_TOLERANCE_MS, type Intersection, type IntersectionPlan } from "./model.js";
import { isActuated } from "./plan.js";
import type { Now } from "./time.js";
import { applyRequests, CLEARING_TARGET, enterMode, isClearing } from "./sequencer-modes.js";
import { type CycleEntry, cycleEntry, decideStartUp, ENTRY_SLACK_MS, type StartUp } from "./start-up.js";

/**
 * The fixed-time sequencer: a pure state machine. Given the intersection, the plan in force and the
 * time, it yields every signal group's commanded aspect and the events that happened.
 *
 * Lamp timing runs on the monotonic clock (`monoMs`) and is measured from the tick at which an
 * interval really started, so that no minimum green, walk, yellow, pedestrian clearance or red
 * clearance can be cut short by tick jitter. Where the cycle should be is computed from the wall clock
 * (`wallMs`) at each cycle boundary; a clock step therefore shows up as an offset error that the
 * plan's correction mode removes over a few cycles, never as a shortened interval.
 */

export type {
  GroupInterval,
  GroupTimer,
  SequencerMode,
  ReportedMode,
  PendingPlan,
  NextStage,
  SequencerState,
  SequencerEvent,
  SignalEvent,
  SequencerStep,
  PreviousRun,
  Hold,
} from "./sequencer-types.js";
import type {
  ActuatedRun,
  GroupInterval,
  GroupTimer,
  NextStage,
  ReportedMode,
  PendingPlan,
  PreviousRun,
  SequencerState,
  SequencerEvent,
  SignalEvent,
  SequencerStep,
} from "./sequencer-types.js";

/** At most this many plans may wait for their activation instant; one more is rejected (and reported). */
export const MAX_PENDING_PLANS = 4;

/** Upper bound on interval changes processed in one tick: far above what any valid plan needs. */
const MAX_ADVANCES_PER_TICK = 64;

export function startSequencer(intersection: Intersection, plan: IntersectionPlan, now: Now): SequencerState {
  invariant(
    plan.intersectionId === intersection.id,
    () => `plan ${plan.planId} was compiled for ${plan.intersectionId}, not ${intersection.id}`,
  );
  return {
    intersection,
    mode: "startup-flash",
    modeSinceMs: now.monoMs,
    plan,
    pending: [],
    groups: intersection.groups.map(() => ({ interval: "rest", sinceMs: now.monoMs })),
    stage: 0,
    stagePlannedEndMs: now.monoMs,
    next: null,
    cycleDurationsMs: plan.stages.map((s) => s.splitMs),
    cycleStartMs: now.monoMs,
    windowEndsMs: windowEnds(
      now.monoMs,
      plan.stages.map((s) => s.splitMs),
    ),
    served: intersection.groups.map(() => false),
    servedThisCycle: plan.stages.map(() => false),
    servedNextCycle: plan.stages.map(() => false),
    demand: null,
    actuated: null,
    offsetErrorMs: 0,
    inStep: false,
    cycles: 0,
    flashRequest: null,
    stopRequested: false,
    held: null,
    noGoBeforeMs: Number.NEGATIVE_INFINITY,
  };
}

/** The longest a maintenance hold may last, and how long one lasts when the operator names no time. */
export const MAX_HOLD_MS = 2 * 60 * 60_000;
export const DEFAULT_HOLD_MS = 15 * 60_000;

/** Why a maintenance hold cannot begin now, or null: only a running sequence can hold its stage. */
export function holdRefusal(state: SequencerState): string | null {
  if (state.stopRequested) return "this gateway is stopping";
  if (state.flashRequest === "enter") return "the intersection is entering flash";
  if (state.mode !== "running")
    return `the intersection is not running a plan (${reportedMode(state)}): a hold keeps a running stage`;
  return null;
}

export function reportedMode(state: SequencerState): ReportedMode {
  switch (state.mode) {
    case "startup-clearing":
    case "startup-flash":
    case "startup-all-red":
      return "startup";
    case "clearing-to-all-red":
      return "startup";
    case "clearing-to-flash":
    case "flash":
      return "flash";
    case "clearing-to-stop":
    case "stopped":
      return "stopping";
    case "running":
      if (state.held) return "hold";
      return state.inStep ? "coordinated" : "transition";
  }
}

/** A clean stop is complete: all-red is shown and may now be handed to the module's safe state. */
export function isStopped(state: SequencerState): boolean {
  return state.mode === "stopped";
}

/**
 * The longest a clean stop can take from the moment it is asked for: a group that has just begun its
 * go interval runs its minimum, its clearance and its red clearance; one tick to apply the request, one
 * to show all-red. A start-up clearing waits for its first tick too.
 */
export function stopBoundMs(intersection: Intersection, tickMs: number): number {
  const longest = Math.max(
    0,
    ...intersection.groups.map((g) => g.minGoMs + g.clearanceMs + g.redClearanceMs),
  );
  return longest + 3 * tickMs;
}

export function stepSequencer(state: SequencerState, event: SequencerEvent, now: Now): SequencerStep {
  const events: SignalEvent[] = [];
  const before = reportedMode(state);
  let next: SequencerState;
  switch (event.type) {
    case "tick":
      next = advance(state, now, events);
      break;
    case "schedule-plan":
      next = schedule(
        state,
        {
          plan: event.plan,
          activationWallMs: event.activationWallMs,
          txnId: event.txnId ?? null,
          ...(event.intersection ? { intersection: event.intersection } : {}),
        },
        now,
        events,
      );
      break;
    case "withdraw-plan":
      next = withdraw(state, event.txnId, now, events);
      break;
    case "enter-flash":
    case "leave-flash":
      // Intervals change only on ticks, when the outputs are written and checked: the request waits.
      next = { ...state, flashRequest: event.type === "enter-flash" ? "enter" : "leave" };
      break;
    case "stop":
      next = { ...state, stopRequested: true };
      break;
    case "restart":
      // After a fault's reset: a hold that the fault ended is reported ended now (a latched fault stops
      // the sequencer where it was).
      if (state.held)
        events.push({
          type: "hold",
          held: false,
          by: state.held.by,
          stage: state.plan.stages[state.stage]?.id ?? "?",
          reason: "fault",
        });
      next = startSequencer(state.intersection, state.plan, now);
      next = { ...next, pending: state.pending, stopRequested: state.stopRequested };
      break;
    case "adopt":
      next = adopt(
        state,
        event.intervals,
        event.allRed ?? false,
        event.previous ?? "unknown",
        event.lit ?? true,
        now,
        events,
      );
      break;
    case "re-adopt": {
      const fresh = startSequencer(state.intersection, state.plan, now);
      events.push({ type: "start-up", how: "cold", reason: event.reason });
      next = clearShown(
        { ...fresh, pending: state.pending, stopRequested: state.stopRequested, cycles: state.cycles },
        event.intervals,
        now,
        true,
      );
      break;
    }
    case "hold":
      next = hold(state, event.forMs, event.by, now, events);
      break;
    case "release-hold":
      next = state.held ? releaseHold(state, event.by, "operator", now, events) : state;
      break;
    case "demand":
      invariant(
        event.groups.length === state.groups.length,
        () =>
          `demand for ${event.groups.length} groups at ${state.intersection.id}, which has ${state.groups.length}`,
      );
      next = { ...state, demand: event.groups };
      break;
  }
  const after = reportedMode(next);
  if (after !== before) events.push({ type: "mode", mode: after, previous: before });
  return { state: next, events };
}

function schedule(
  state: SequencerState,
  change: PendingPlan,
  now: Now,
  events: SignalEvent[],
): SequencerState {
  const { plan, activationWallMs } = change;
  if (plan.intersectionId !== state.intersection.id) {
    events.push({
      type: "plan-rejected",
      planId: plan.planId,
      reason: `compiled for intersection ${plan.intersectionId}, not ${state.intersection.id}`,
    });
    return state;
  }
  const { kept, replaced } = waitingPlans(state, activationWallMs);
  if (kept.length >= MAX_PENDING_PLANS) {
    events.push({
      type: "plan-rejected",
      planId: plan.planId,
      reason: `${MAX_PENDING_PLANS} plans already wait for activation`,
    });
    return state;
  }
  for (const old of replaced)
    events.push({ type: "plan-superseded", planId: old.plan.planId, by: plan.planId });
  events.push({ type: "plan-scheduled", planId: plan.planId, activationWallMs });
  const pending = [...kept, change].sort((a, b) => a.activationWallMs - b.activationWallMs);
  if (state.actuated) return redecide(state, pending, activationWallMs, now);
  // The next stage of a running sequence is decided when the current one starts. Deciding again is
  // always safe (every interval is guarded when it ends), and lets a plan committed during the last
  // stage still take the coming boundary.
  const running = state.mode === "running" && state.stage === state.plan.stages.length - 1;
  return running
    ? decideNext({ ...state, pending: withSuperseded(state, pending) }, now, events)
    : { ...state, pending };
}

function withdraw(state: SequencerState, txnId: string, now: Now, events: SignalEvent[]): SequencerState {
  const withdrawn = state.pending.filter((p) => p.txnId === txnId);
  const chosen = state.next?.activation?.txnId === txnId ? state.next.activation : null;
  if (withdrawn.length === 0 && !chosen) return state;
  for (const p of [...withdrawn, ...(chosen ? [chosen] : [])])
    events.push({ type: "plan-withdrawn", planId: p.plan.planId, txnId });
  const pending = state.pending.filter((p) => p.txnId !== txnId);
  if (!chosen) return { ...state, pending };
  if (state.actuated) return { ...state, pending: withSuperseded(state, pending), next: null };
  // Chosen for the coming boundary already: decide again without it (always safe, as in `schedule`),
  // from every change that was due, those it superseded too (or the intersection would run none of
  // them, while its peers run the one it superseded).
  return decideNext({ ...state, pending: withSuperseded(state, pending) }, now, events);
}

/** The waiting changes with those the coming boundary's choice superseded, in instant order. */
function withSuperseded(state: SequencerState, pending: readonly PendingPlan[]): PendingPlan[] {
  const superseded = state.next?.superseded ?? [];
  return [...superseded, ...pending].sort((a, b) => a.activationWallMs - b.activationWallMs);
}

/**
 * The plans waiting for their instant, less those a plan for `activationWallMs` replaces: one waiting
 * for the very same instant would be superseded by it at that boundary anyway.
 */
function waitingPlans(state: SequencerState, activationWallMs: number) {
  const waiting = [...state.pending, ...(state.next?.activation ? [state.next.activation] : [])];
  return {
    kept: waiting.filter((p) => p.activationWallMs !== activationWallMs),
    replaced: waiting.filter((p) => p.activationWallMs === activationWallMs),
  };
}

/** Would a plan for this instant be accepted now? (A participant votes no rather than commit one that would not.) */
export function hasRoomForPlan(state: SequencerState, activationWallMs: number): boolean {
  return waitingPlans(state, activationWallMs).kept.length < MAX_PENDING_PLANS;
}

/**
 * Why a corridor plan change for this instant must be voted down here, or null: a gateway that is
 * stopping takes none, and the controller's queue of waiting changes is bounded. One rule for the
 * gateway and the simulator alike.
 */
export function planChangeRefusal(
  state: SequencerState,
  activationWallMs: number,
  stopping: boolean,
): string | null {
  if (stopping) return "this gateway is stopping: it takes no plan change";
  if (state.held)
    return `this intersection is on a maintenance hold (by ${state.held.by}): release the hold first`;
  if (!hasRoomForPlan(state, activationWallMs))
    return `${MAX_PENDING_PLANS} plan changes already wait for their instants here; push again once the first has taken effect`;
  return null;
}

function adopt(
  state: SequencerState,
  intervals: readonly GroupInterval[],
  allRed: boolean,
  previous: PreviousRun,
  lit: boolean,
  now: Now,
  events: SignalEvent[],
): SequencerState {
  invariant(
    intervals.length === state.groups.length,
    `adopt: ${intervals.length} intervals for ${state.groups.length} groups`,
  );
  // Only a sequencer that has not started yet takes over the field.
  if (state.mode !== "startup-flash") return state;
  const decided = decideStartUp(state.intersection, state.plan, intervals, allRed, previous, now.wallMs);
  events.push({ type: "start-up", how: decided.how, reason: decided.reason });
  if (decided.how === "resumed") return resume(state, decided, now, events);
  if (decided.how === "warm") return enterMode(state, "startup-all-red", now);
  return clearShown(state, intervals, now, previous === "ended-abruptly", lit);
}

/**
 * The full start-up over what the field shows: a green, WALK or yellow is cleared first, never cut; and
 * no group goes before every group at rest could have finished a clearance the readback cannot see (a
 * pedestrian clearance frozen as steady DON'T WALK), should it outlast the start-up flash and all-red.
 */
function clearShown(
  state: SequencerState,
  intervals: readonly GroupInterval[],
  now: Now,
  lastRunRan: boolean,
  lit = true,
): SequencerState {
  const running = intervals.some((i) => i === "go" || i === "clearance");
  // Only where a run was going (the lamps show it, or the store proves an abrupt end): a module that
  // shows nothing running after a first start or another configuration gets the start-up as it was —
  // except that a pedestrian clearance reads back as DON'T WALK: nothing goes before one could have
  // ended, when the module holds lit lamps a run left (a no-op where the start-up's flash and all-red
  // outlast it, as they should; nothing at all on a dark field: a first start).
  if (!running && !lastRunRan) {
    if (!lit) return state;
    let pedestrianMs = 0;
    state.intersection.groups.forEach((g, gi) => {
      if (g.kind === "pedestrian" && intervals[gi] === "rest")
        pedestrianMs = Math.max(pedestrianMs, g.clearanceMs + g.redClearanceMs);
    });
    return { ...state, noGoBeforeMs: Math.max(state.noGoBeforeMs, now.monoMs + pedestrianMs) };
  }
  let hiddenMs = 0;
  state.intersection.groups.forEach((g, gi) => {
    if (intervals[gi] === "rest") hiddenMs = Math.max(hiddenMs, g.clearanceMs + g.redClearanceMs);
  });
  const guarded = { ...state, noGoBeforeMs: Math.max(state.noGoBeforeMs, now.monoMs + hiddenMs) };
  // Nothing to take over: start as usual.
  if (!running) return guarded;
  return {
    ...guarded,
    mode: "startup-clearing",
    modeSinceMs: now.monoMs,
    // Timed from the first tick, when the outputs are first written and checked (as every interval).
    groups: intervals.map((interval) => ({
      interval: interval === "go" || interval === "clearance" ? interval : "rest",
      sinceMs: NOT_YET_SHOWN,
    })),
    next: null,
  };
}

/**
 * Takes over the lamps of a run that ended abruptly, at the stage they show (core/start-up.ts decided
 * it is where the clock puts the cycle). Every green and WALK shown runs its minimum again from the
 * first tick, and nothing new goes before every group at rest could have finished a clearance the
 * readback cannot see: the stage ends with its window, or that much later (an offset error, corrected).
 */
function resume(
  state: SequencerState,
  decided: Extract<StartUp, { how: "resumed" }>,
  now: Now,
  events: SignalEvent[],
): SequencerState {
  const t = now.monoMs;
  const { intersection, plan } = state;
  const stage = plan.stages[decided.index];
  invariant(stage, () => `plan ${plan.planId} has no stage ${decided.index}`);
  let goNeedMs = 0;
  let restNeedMs = 0;
  intersection.groups.forEach((g, gi) => {
    if (decided.served[gi])
      goNeedMs = Math.max(goNeedMs, minGoIn(intersection, stage, gi) + g.clearanceMs + g.redClearanceMs);
    else restNeedMs = Math.max(restNeedMs, g.clearanceMs + g.redClearanceMs);
  });
  const cycleStartMs = t - decided.positionMs;
  const durations = plan.stages.map((st) => st.splitMs);
  const ends = windowEnds(cycleStartMs, durations);
  const noGoBeforeMs = t + restNeedMs + RESUME_FIRST_TICK_MS;
  const resumed: SequencerState = {
    ...state,
    mode: "running",
    modeSinceMs: t,
    stage: decided.index,
    cycleDurationsMs: durations,
    cycleStartMs,
    windowEndsMs: ends,
    stagePlannedEndMs: Math.max(
      ends[decided.index] as number,
      t + goNeedMs + RESUME_FIRST_TICK_MS,
      noGoBeforeMs,
    ),
    groups: decided.served.map((on) => ({ interval: on ? "go" : "rest", sinceMs: NOT_YET_SHOWN })),
    served: decided.served,
    servedThisCycle: plan.stages.map((_, k) => k <= decided.index),
    servedNextCycle: plan.stages.map(() => false),
    actuated: isActuated(plan) ? { goStartMs: t, lastExtendMs: t, ended: null, ahead: false } : null,
    offsetErrorMs: 0,
    inStep: true,
    cycles: state.cycles + 1,
    noGoBeforeMs,
    next: null,
  };
  events.push({ type: "stage-start", planId: plan.planId, stage: stage.id });
  return resumed.actuated ? resumed : decideNext(resumed, now, events);
}

/** Room for the first tick after a take-over, from which the minimums are counted. */
const RESUME_FIRST_TICK_MS = 500;

const NOT_YET_SHOWN = Number.POSITIVE_INFINITY;

function hold(
  state: SequencerState,
  forMs: number,
  by: string,
  now: Now,
  events: SignalEvent[],
): SequencerState {
  if (holdRefusal(state) !== null) return state;
  const ms = Math.min(Math.max(0, forMs), MAX_HOLD_MS);
  const stage = state.plan.stages[state.stage]?.id ?? "?";
  if (!state.held) events.push({ type: "hold", held: true, by, stage, reason: "operator" });
  return { ...state, held: { untilMs: now.monoMs + ms, by } };
}

/**
 * Ends a maintenance hold. A fixed-time stage held past its end ends now, through its clearances, and
 * the sequence goes on from there (the cycle's correction brings it back in step); an actuated plan
 * goes on as after a stall (the boundary reached late takes what is due, the next cycle rolls).
 */
function releaseHold(
  state: SequencerState,
  by: string,
  reason: "operator" | "expired" | "flash" | "stop" | "fault",
  now: Now,
  events: SignalEvent[],
): SequencerState {
  if (!state.held) return state;
  const stage = state.plan.stages[state.stage]?.id ?? "?";
  events.push({ type: "hold", held: false, by, stage, reason });
  const released: SequencerState = { ...state, held: null };
  if (released.mode !== "running" || released.actuated) return released;
  return {
    ...released,
    stagePlannedEndMs: Math.max(
      state.stagePlannedEndMs,
      now.monoMs + longestClearanceMs(state.intersection, state.served),
    ),
  };
}

function advance(state: SequencerState, now: Now, events: SignalEvent[]): SequencerState {
  let s = state;
  if (s.held) {
    if (s.stopRequested) s = releaseHold(s, s.held.by, "stop", now, events);
    else if (s.flashRequest === "enter") s = releaseHold(s, s.held.by, "flash", now, events);
    else if (now.monoMs >= s.held.untilMs) s = releaseHold(s, s.held.by, "expired", now, events);
  }
  s = applyRequests(s, now);
  for (let i = 0; i < MAX_ADVANCES_PER_TICK; i++) {
    const moved = advanceOnce(s, now, events);
    if (moved === s) return s;
    s = moved;
  }
  invariant(
    false,
    `sequencer of ${state.intersection.id} did not settle within ${MAX_ADVANCES_PER_TICK} steps`,
  );
}

/** One change (a group interval, a stage, a mode), or the same state when nothing is due. */
function advanceOnce(s: SequencerState, now: Now, events: SignalEvent[]): SequencerState {
  const t = now.monoMs;
  switch (s.mode) {
    case "startup-flash":
      return t - s.modeSinceMs >= s.intersection.startupFlashMs ? enterMode(s, "startup-all-red", now) : s;
    case "startup-all-red": {
      if (t - s.modeSinceMs < s.intersection.startupAllRedMs || t < s.noGoBeforeMs) return s;
      // Normal operation begins where the clock puts the cycle; a plan due by now takes effect here.
      const due = takeDue(s, now.wallMs, events);
      const plan = due.activation?.plan ?? s.plan;
      const intersection = due.activation?.intersection ?? s.intersection;
      const entering: SequencerState = {
        ...s,
        intersection,
        mode: "running",
        modeSinceMs: t,
        pending: due.pending,
      };
      const entry = cycleEntry(intersection, plan, now.wallMs, ENTRY_SLACK_MS);
      return entry
        ? enterCycle(entering, plan, due.activation, entry, now, events)
        : beginCycle(entering, plan, due.activation, now, events);
    }
    case "flash":
    case "stopped":
      return s;
    case "running":
    case "clearing-to-flash":
    case "startup-clearing":
    case "clearing-to-all-red":
    case "clearing-to-stop": {
      if (s.groups.some((g) => g.sinceMs === NOT_YET_SHOWN))
        return { ...s, modeSinceMs: t, groups: s.groups.map((g) => ({ ...g, sinceMs: t })) };
      if (s.mode === "running" && s.actuated && !s.held) {
        const acted = actuate(s, s.actuated, now, events);
        if (acted !== s) return acted;
      }
      const groups = advanceGroups(s, t);
      if (groups !== s.groups) return { ...s, groups };
      // A group served again by the next stage goes on only after its steady red / DON'T WALK has been
      // shown for at least a tick: when a plan change makes a group that was clearing go again at once,
      // the clearance must not run straight into green or WALK. A red clearance interval has already
      // shown it; only a group without one (redClearanceMs 0) may have to wait a tick.
      const allClear = s.groups.every((g, gi) => {
        const servedNext = s.next?.served[gi] === true;
        if (g.interval === "go") return servedNext;
        const redShown = g.sinceMs < t || (s.intersection.groups[gi]?.redClearanceMs ?? 0) > 0;
        return g.interval === "rest" && (!servedNext || redShown);
      });
      if (!allClear) return s;
      const target = CLEARING_TARGET[s.mode];
      if (target) {
        // Every head shows steady red / DON'T WALK for at least one tick before what follows starts.
        return s.groups.every((g) => g.sinceMs < t) ? enterMode(s, target, now) : s;
      }
      if (t < s.stagePlannedEndMs || t < s.noGoBeforeMs) return s;
      return startNextStage(s, now, events);
    }
  }
}

/** Moves every group whose interval is due on to its next interval; the same array when none is. */
function advanceGroups(s: SequencerState, t: number): readonly GroupTimer[] {
  let changed: GroupTimer[] | null = null;
  const { groups } = s.intersection;
  s.groups.forEach((timer, gi) => {
    const g = groups[gi];
    invariant(g, `group index ${gi} out of range`);
    const elapsed = t - timer.sinceMs;
    let interval: GroupInterval | null = null;
    if (timer.interval === "go") {
      const continues = s.next?.served[gi] === true;
      // A maintenance hold keeps every go interval of a running sequence (flash and stop end the hold first).
      const held = s.held !== null && s.mode === "running";
      if (!continues && !held && elapsed >= g.minGoMs) {
        const clearanceFrom = isClearing(s.mode)
          ? Number.NEGATIVE_INFINITY
          : s.stagePlannedEndMs - g.clearanceMs - g.redClearanceMs;
        if (t >= clearanceFrom) interval = "clearance";
      }
    } else if (timer.interval === "clearance") {
      if (elapsed >= g.clearanceMs) interval = "red-clearance";
    } else if (timer.interval === "red-clearance") {
      if (elapsed >= g.redClearanceMs) interval = "rest";
    }
    if (interval) {
      changed ??= [...s.groups];
      changed[gi] = { interval, sinceMs: t };
    }
  });
  return changed ?? s.groups;
}

function startNextStage(s: SequencerState, now: Now, events: SignalEvent[]): SequencerState {
  const next = s.next;
  invariant(next, `intersection ${s.intersection.id}: a running sequence has no next stage`);
  if (next.boundary) return beginCycle(s, next.plan, next.activation, now, events, next);
  const stage = next.plan.stages[next.index];
  invariant(stage, `stage index ${next.index} out of range in plan ${next.plan.planId}`);
  const t = now.monoMs;
  const ahead = next.ahead === true;
  const started: SequencerState = {
    ...s,
    stage: next.index,
    // An actuated stage runs to its force-off, the end of its window, wherever it started; the
    // coordinated stage of the next cycle, started early, rests until that cycle gives it its window.
    stagePlannedEndMs: s.actuated
      ? ahead
        ? next.index === s.plan.coordinatedStage
          ? RESTING
          : predictedWindowEnd(s, next.index)
        : (s.windowEndsMs[next.index] as number)
      : s.stagePlannedEndMs + (s.cycleDurationsMs[next.index] as number),
    groups: startGroups(s, next.served, t),
    served: next.served,
    actuated: s.actuated ? { goStartMs: t, lastExtendMs: t, ended: null, ahead } : null,
    // A stage is served once a cycle: one that ended early is not called back into its window.
    servedThisCycle: ahead ? s.servedThisCycle : marked(s.servedThisCycle, next.index),
    servedNextCycle: ahead ? marked(s.servedNextCycle, next.index) : s.servedNextCycle,
  };
  events.push({ type: "stage-start", planId: s.plan.planId, stage: stage.id });
  return s.actuated ? { ...started, next: null } : decideNext(started, now, events);
}

function marked(flags: readonly boolean[], k: number): boolean[] {
  return flags.map((f, i) => f || i === k);
}

/** A stage end that is not yet known: a coordinated stage resting in green until a call comes. */
const RESTING = Number.POSITIVE_INFINITY;

/** Starts a cycle of `plan` with stage 0, planning this cycle's offset correction. */
function beginCycle(
  s: SequencerState,
  plan: IntersectionPlan,
  activation: PendingPlan | null,
  now: Now,
  events: SignalEvent[],
  first?: NextStage,
): SequencerState {
  if (activation) events.push(activated(plan, activation, now));
  const t = now.monoMs;
  // A reloaded intersection configuration takes effect with its plan, here at the boundary.
  const intersection = activation?.intersection ?? s.intersection;
  invariant(
    intersection.groups.length === s.intersection.groups.length,
    () => `intersection ${s.intersection.id}: a reloaded configuration changed the number of groups`,
  );
  const cycle = planCycle(plan, now.wallMs);
  // A cycle starts with its first stage; an actuated plan's with the first one called, when its
  // previous cycle chose it (start-up and a plan change start with the first stage, in full).
  const index = first?.index ?? 0;
  const stage = plan.stages[index];
  invariant(stage, `plan ${plan.planId} has no stage ${index}`);
  const served = first?.served ?? stage.member;
  const ends = windowEnds(t, cycle.durationsMs);
  const actuated = isActuated(plan);
  const started: SequencerState = {
    ...s,
    intersection,
    plan,
    stage: index,
    cycleDurationsMs: cycle.durationsMs,
    cycleStartMs: t,
    windowEndsMs: ends,
    stagePlannedEndMs: ends[index] as number,
    groups: startGroups(s, served, t),
    served,
    servedThisCycle: marked(
      plan.stages.map(() => false),
      index,
    ),
    servedNextCycle: plan.stages.map(() => false),
    actuated: actuated ? { goStartMs: t, lastExtendMs: t, ended: null, ahead: false } : null,
    offsetErrorMs: cycle.offsetErrorMs,
    inStep: cycle.inStep,
    cycles: s.cycles + 1,
  };
  events.push({
    type: "cycle-start",
    planId: plan.planId,
    offsetErrorMs: cycle.offsetErrorMs,
    correctionMs: cycle.correctionMs,
  });
  events.push({ type: "stage-start", planId: plan.planId, stage: stage.id });
  return actuated ? { ...started, next: null } : decideNext(started, now, events);
}

/**
 * Starts the sequence where the clock puts the cycle (core/start-up.ts chose the stage): the cycle's
 * windows are laid from its ideal start, `positionMs` ago, so that its boundary and its coordinated band
 * fall where the offset puts them; the chosen stage's groups go now, and it ends with its window. The
 * stages before it are taken as served in this cycle (an actuated plan serves each once a cycle).
 */
function enterCycle(
  s: SequencerState,
  plan: IntersectionPlan,
  activation: PendingPlan | null,
  entry: CycleEntry,
  now: Now,
  events: SignalEvent[],
): SequencerState {
  const t = now.monoMs;
  const stage = plan.stages[entry.index];
  invariant(stage, () => `plan ${plan.planId} has no stage ${entry.index}`);
  if (activation) events.push(activated(plan, activation, now));
  const durations = plan.stages.map((st) => st.splitMs);
  const ends = windowEnds(t - entry.positionMs, durations);
  invariant(
    (ends[entry.index] as number) - t >= stage.minMs,
    () => `plan ${plan.planId}: entering stage ${stage.id} with less than its minimum left in its window`,
  );
  const entered: SequencerState = {
    ...s,
    plan,
    stage: entry.index,
    cycleDurationsMs: durations,
    cycleStartMs: t - entry.positionMs,
    windowEndsMs: ends,
    stagePlannedEndMs: ends[entry.index] as number,
    groups: startGroups(s, stage.member, t),
    served: stage.member,
    servedThisCycle: plan.stages.map((_, k) => k <= entry.index),
    servedNextCycle: plan.stages.map(() => false),
    actuated: isActuated(plan) ? { goStartMs: t, lastExtendMs: t, ended: null, ahead: false } : null,
    offsetErrorMs: 0,
    inStep: true,
    cycles: s.cycles + 1,
  };
  events.push({
    type: "cycle-start",
    planId: plan.planId,
    offsetErrorMs: 0,
    correctionMs: 0,
    entered: stage.id,
  });
  events.push({ type: "stage-start", planId: plan.planId, stage: stage.id });
  return entered.actuated ? { ...entered, next: null } : decideNext(entered, now, events);
}

/** The event of a plan change taking effect now: a cycle begun or entered with its new plan. */
function activated(plan: IntersectionPlan, activation: PendingPlan, now: Now): SignalEvent {
  return {
    type: "plan-activated",
    planId: plan.planId,
    version: plan.version,
    txnId: activation.txnId,
    activationWallMs: activation.activationWallMs,
    lateByMs: now.wallMs - activation.activationWallMs,
  };
}

function startGroups(s: SequencerState, member: readonly boolean[], t: number): GroupTimer[] {
  return s.groups.map((timer, gi) => {
    if (!member[gi] || timer.interval === "go") return timer;
    invariant(
      timer.interval === "rest",
      () => `group ${s.intersection.groups[gi]?.id} would start while still in ${timer.interval}`,
    );
    return { interval: "go", sinceMs: t };
  });
}

/**
 * Chooses the stage after the one that just started. At the last stage of a cycle this is where a
 * pending plan is taken: the first cycle boundary at or after its activation instant.
 */
function decideNext(s: SequencerState, now: Now, events: SignalEvent[]): SequencerState {
  const last = s.stage === s.plan.stages.length - 1;
  if (!last) {
    const member = (s.plan.stages[s.stage + 1] as (typeof s.plan.stages)[number]).member;
    return {
      ...s,
      next: { plan: s.plan, index: s.stage + 1, activation: null, served: member, boundary: false },
    };
  }
  // The boundary is predicted from the plan; ticks can land it a little either side. One predicted
  // within the in-step tolerance before an activation instant is that instant's boundary: an
  // intersection in step enters there, not a whole cycle later.
  const boundaryWallMs = now.wallMs + (s.stagePlannedEndMs - now.monoMs);
  const due = takeDue(s, boundaryWallMs + IN_STEP_TOLERANCE_MS, events);
  return {
    ...s,
    pending: due.pending,
    next: {
      plan: due.activation?.plan ?? s.plan,
      index: 0,
      activation: due.activation,
      superseded: due.superseded,
      served: ((due.activation?.plan ?? s.plan).stages[0] as (typeof s.plan.stages)[number]).member,
      boundary: true,
    },
  };
}

/**
 * The plan that takes effect at a cycle boundary falling at `boundaryWallMs`: the latest pending plan
 * whose activation instant is at or before it. Earlier ones are superseded (and reported).
 */
function takeDue(
  s: SequencerState,
  boundaryWallMs: number,
  events: SignalEvent[],
): {
  activation: PendingPlan | null;
  pending: readonly PendingPlan[];
  superseded: readonly PendingPlan[];
} {
  let chosen = -1;
  s.pending.forEach((p, i) => {
    if (p.activationWallMs <= boundaryWallMs) chosen = i;
  });
  if (chosen < 0) return { activation: null, pending: s.pending, superseded: [] };
  const latest = s.pending[chosen] as PendingPlan;
  const superseded = s.pending.slice(0, chosen);
  // A reloaded configuration is not lost with the change it came with: the newest one goes on with the
  // change taken (the shell compiles what it dispatches after a reload against it).
  const reloaded = [...superseded].reverse().find((p) => p.intersection)?.intersection;
  const activation = latest.intersection || !reloaded ? latest : { ...latest, intersection: reloaded };
  for (const old of superseded) {
    events.push({ type: "plan-superseded", planId: old.plan.planId, by: activation.plan.planId });
  }
  return { activation, pending: s.pending.slice(chosen + 1), superseded };
}

/**
 * Applies the actuated-coordinated rules (actuated.ts) at a tick: one change, or the same state when
 * none is due. The cycle rolls on at its boundary while a resting or early coordinated stage stays
 * green; a vehicle extends the stage; the stage gaps out, maxes out or reaches its force-off, and what
 * follows is chosen then, as late as its clearances allow.
 */
function actuate(s: SequencerState, run: ActuatedRun, now: Now, events: SignalEvent[]): SequencerState {
  const t = now.monoMs;
  const { intersection, plan } = s;
  const c = plan.coordinatedStage;
  const boundaryMs = s.windowEndsMs[plan.stages.length - 1] as number;
  if (t >= boundaryMs) {
    // A boundary reached late (a stalled process) takes what is due by now: a change chosen for it
    // earlier gives way to a later one that has become due meanwhile, as its peers enter that one.
    const chosen = s.next?.activation ?? null;
    const later = s.pending.some(
      (p) =>
        p.activationWallMs <= now.wallMs + IN_STEP_TOLERANCE_MS &&
        p.activationWallMs > (chosen?.activationWallMs ?? Number.NEGATIVE_INFINITY),
    );
    if (s.next?.boundary && later)
      return { ...s, pending: withSuperseded(s, [...s.pending, ...(chosen ? [chosen] : [])]), next: null };
    // A stage of this cycle that runs to the boundary decides what follows it first (its force-off).
    const undecided = s.next === null && s.stage !== plan.coordinatedStage && !run.ahead;
    if (undecided) {
      const decided = endNonCoordinated(
        s,
        run,
        longestClearanceMs(intersection, s.served),
        boundaryMs,
        now,
        events,
      );
      if (decided !== s) return decided;
    }
    if (!s.next?.boundary) return atBoundary(s, run, boundaryMs, now, events);
  }
  const stage = plan.stages[s.stage];
  invariant(stage, () => `stage index ${s.stage} out of range in plan ${plan.planId}`);
  invariant(
    s.served.every((on, g) => !on || stage.member[g]),
    () => `stage ${stage.id} of plan ${plan.planId} serves a group that is not one of its own`,
  );
  if (s.next) return s;
  if (
    s.stage !== c &&
    run.ended === null &&
    t > run.lastExtendMs &&
    extending(intersection, s.served, s.demand)
  )
    return { ...s, actuated: { ...run, lastExtendMs: t } };
  const clearance = longestClearanceMs(intersection, s.served);
  return s.stage === c
    ? endCoordinated(s, run, clearance, boundaryMs, now, events)
    : endNonCoordinated(s, run, clearance, boundaryMs, now, events);
}

function endNonCoordinated(
  s: SequencerState,
  run: ActuatedRun,
  clearance: number,
  boundaryMs: number,
  now: Now,
  events: SignalEvent[],
): SequencerState {
  const t = now.monoMs;
  const { intersection, plan } = s;
  const stage = plan.stages[s.stage] as (typeof plan.stages)[number];
  const early = onMaxRecall(stage, s.served, intersection, s.demand)
    ? null
    : (run.ended ?? terminationAt(stage, run, t));
  const forcedOff = t >= s.stagePlannedEndMs - clearance;
  if (!early && !forcedOff) return s;
  const earliestMs = early ? Math.min(s.stagePlannedEndMs, t + clearance) : s.stagePlannedEndMs;
  // Ended early it may end as soon as the groups that do not go on have cleared; forced off, at its end.
  const floorMs = early ? t : s.stagePlannedEndMs;
  // A stage started ahead of its cycle is followed by the stages after it in that cycle.
  const choice = run.ahead
    ? chooseNext(s, earliestMs, plan.stages.length, boundaryMs, now, events, s.stage + 1, floorMs)
    : chooseNext(s, earliestMs, s.stage + 1, boundaryMs, now, events, 0, floorMs);
  invariant(choice !== "rest", () => `stage ${stage.id} of plan ${plan.planId} found nothing to follow it`);
  const { next, pending } = choice;
  const minEndMs = minimumEnd(s, stage, next.served);
  if (next.boundary && boundaryMs > earliestMs) {
    // A plan change takes effect at the boundary with its new plan's first stage: the stage holds.
    return { ...s, pending, next, stagePlannedEndMs: Math.max(boundaryMs, minEndMs) };
  }
  const reason: Termination = early ?? "force-off";
  if (run.ended === null && stage.actuation)
    events.push({
      type: "stage-terminated",
      planId: plan.planId,
      stage: stage.id,
      reason,
      groups: vehicleGroupsOf(intersection, plan, s.stage),
    });
  const endMs = early
    ? Math.min(
        s.stagePlannedEndMs,
        Math.max(t + endingClearanceMs(intersection, s.served, next.served), minEndMs),
      )
    : s.stagePlannedEndMs;
  return {
    ...s,
    pending,
    next,
    stagePlannedEndMs: Math.max(endMs, minEndMs),
    actuated: { ...run, ended: early },
  };
}

function endCoordinated(
  s: SequencerState,
  run: ActuatedRun,
  clearance: number,
  boundaryMs: number,
  now: Now,
  events: SignalEvent[],
): SequencerState {
  const t = now.monoMs;
  const { plan } = s;
  const c = plan.coordinatedStage;
  const stage = plan.stages[c] as (typeof plan.stages)[number];
  let earliestMs: number;
  let from: number;
  let bandEndMs = 0;
  if (run.ahead) {
    // The next cycle's coordinated stage, started early: only a plan change due at this cycle's
    // boundary ends it before that cycle begins.
    earliestMs = t + clearance;
    from = plan.stages.length;
  } else {
    const bandStartMs = windowStartMs(s.cycleStartMs, s.windowEndsMs, c);
    bandEndMs = s.windowEndsMs[c] as number;
    const before = t < bandStartMs;
    // Its band is never cut: it is decided what follows only as its clearances must begin.
    if (!before && t < bandEndMs - clearance) return s;
    earliestMs = before ? t + clearance : Math.max(bandEndMs, t + clearance);
    // Before its band, it gives way as soon as its clearances allow (no band end to wait for).
    if (before) bandEndMs = 0;
    // Before its band (resting since the last cycle), a called stage whose window lies before the
    // band may still be served, if it ends by its force-off; after it, the stages that follow.
    from = before ? 0 : c + 1;
  }
  const floorMs = run.ahead || bandEndMs === 0 ? t : bandEndMs;
  const choice = chooseNext(s, earliestMs, from, boundaryMs, now, events, 0, floorMs);
  if (choice === "rest") return s.stagePlannedEndMs === RESTING ? s : { ...s, stagePlannedEndMs: RESTING };
  const { next, pending } = choice;
  const minEndMs = minimumEnd(s, stage, next.served);
  const endMs = next.boundary
    ? Math.max(boundaryMs, minEndMs, t + endingClearanceMs(s.intersection, s.served, next.served))
    : Math.max(bandEndMs, minEndMs, t + endingClearanceMs(s.intersection, s.served, next.served));
  return { ...s, pending, next, stagePlannedEndMs: endMs };
}

/**
 * What follows the stage shown, if it ends at `earliestMs`: the first stage from window `from` on that
 * is called (or on recall) and can run its minimum before its force-off, or the coordinated stage,
 * which always can; past this cycle's windows, a plan change due at the boundary, the next cycle's
 * first called stage (from the boundary), or its coordinated stage (early). "rest": the coordinated
 * stage shown has nothing to give way to yet.
 */
function chooseNext(
  s: SequencerState,
  earliestMs: number,
  from: number,
  boundaryMs: number,
  now: Now,
  events: SignalEvent[],
  nextCycleFrom = 0,
  /** The earliest the stage shown may end whatever follows: with `now`, each candidate's own start. */
  floorMs = earliestMs,
): { readonly next: NextStage; readonly pending: readonly PendingPlan[] } | "rest" {
  const at = { floorMs, nowMs: now.monoMs };
  const { plan } = s;
  const c = plan.coordinatedStage;
  const coordinated = (ahead: boolean) =>
    s.stage === c
      ? ("rest" as const)
      : {
          next: {
            plan,
            index: c,
            activation: null,
            served: (plan.stages[c] as (typeof plan.stages)[number]).member,
            boundary: false,
            ahead,
          },
          pending: s.pending,
        };
  for (let w = from; w < plan.stages.length; w++) {
    const endMs = s.windowEndsMs[w] as number;
    // The coordinated stage shown rests into its own band while that band lasts (it goes on: nothing
    // to clear), however long a change away from it would take.
    if (w === c && s.stage === c && endMs > now.monoMs) return "rest";
    if (endMs <= earliestMs) continue;
    if (w === c) return coordinated(false);
    const stage = plan.stages[w] as (typeof plan.stages)[number];
    const served = s.servedThisCycle[w]
      ? null
      : fitting(s, stage, at, windowStartMs(s.cycleStartMs, s.windowEndsMs, w), endMs);
    if (served)
      return { next: { plan, index: w, activation: null, served, boundary: false }, pending: s.pending };
  }
  const boundaryWallMs = now.wallMs + Math.max(0, boundaryMs - now.monoMs);
  const due = takeDue(s, boundaryWallMs + IN_STEP_TOLERANCE_MS, events);
  if (due.activation) {
    const changed = due.activation.plan;
    const first = changed.stages[0] as (typeof plan.stages)[number];
    return {
      next: {
        plan: changed,
        index: 0,
        activation: due.activation,
        superseded: due.superseded,
        served: first.member,
        boundary: true,
      },
      pending: due.pending,
    };
  }
  // The next cycle's stages before its coordinated one may start early too (their force-offs are
  // predicted from the splits; the cycle's correction, known at the boundary, may move them a little).
  for (let w = nextCycleFrom; w < c; w++) {
    const stage = plan.stages[w] as (typeof plan.stages)[number];
    const served = s.servedNextCycle[w]
      ? null
      : fitting(s, stage, at, predictedWindowEnd(s, w - 1), predictedWindowEnd(s, w));
    if (served)
      return {
        next: { plan, index: w, activation: null, served, boundary: false, ahead: true },
        pending: s.pending,
      };
  }
  return coordinated(true);
}

/**
 * Whether a stage starting at `startMs` can run its minimum before its force-off. A stage starts at the
 * first tick after the one before it ends, so it may end a tick or two later than planned: a minimum
 * that overruns the force-off by that little still fits (the coordinated stage then starts well within
 * the in-step tolerance), as the plan check allows a split exactly at its minimum.
 */
function fits(
  s: SequencerState,
  stage: IntersectionPlan["stages"][number],
  served: readonly boolean[],
  startMs: number,
  forceOffMs: number,
): boolean {
  // Groups green now and served by it go on: they owe only the rest of their minimum.
  const greenSince = s.groups.map((g, gi) => (g.interval === "go" && s.served[gi] ? g.sinceMs : null));
  return startMs + minRunMs(s.intersection, stage, served, greenSince, startMs) <= forceOffMs + TICK_SLACK_MS;
}

/**
 * The groups a called stage serves if what is shown now can end at `earliestMs`, or null: all it would
 * serve when that fits before its force-off; else its vehicle groups alone (the walk waits for its next
 * service, its call kept), when a vehicle group is called or the stage is on recall.
 */
function fitting(
  s: SequencerState,
  stage: IntersectionPlan["stages"][number],
  at: EndOfShown,
  windowStart: number,
  forceOffMs: number,
): boolean[] | null {
  const all = servedIfCalled(s.intersection, stage, s.demand);
  if (!all) return null;
  if (fitsFrom(s, stage, all, at, windowStart, forceOffMs)) return all;
  const vehicles = all.map((on, g) => on && s.intersection.groups[g]?.kind === "vehicle");
  const vehicleCalled = vehicles.some(
    (on, g) => on && ((s.demand?.[g]?.call ?? false) || (s.demand?.[g]?.recall ?? "none") !== "none"),
  );
  const recalled = (stage.actuation?.recall ?? "max") !== "none";
  return (vehicleCalled || recalled) &&
    vehicles.some(Boolean) &&
    fitsFrom(s, stage, vehicles, at, windowStart, forceOffMs)
    ? vehicles
    : null;
}

/**
 * Whether `served` fits: it starts once the stage shown has also run its own minimums (those of its
 * groups that do not go on). From its window's start on, a stage has its split, which the plan check
 * proved holds its minimums (a group going on into the next stage counted there); started later, what
 * is left of the window must hold them.
 */
function fitsFrom(
  s: SequencerState,
  stage: IntersectionPlan["stages"][number],
  served: readonly boolean[],
  at: EndOfShown,
  windowStart: number,
  forceOffMs: number,
): boolean {
  const shown = s.plan.stages[s.stage] as IntersectionPlan["stages"][number];
  // It starts when the groups that do not go on into it have cleared, and have run their minimums.
  const startMs = Math.max(
    at.floorMs,
    at.nowMs + endingClearanceMs(s.intersection, s.served, served),
    minimumEnd(s, shown, served),
  );
  // The split holds the minimums of groups carried over from the stage before (the plan check counted
  // what they were served there): a group that starts afresh instead (not served before: skipped, or no
  // call) is checked against the force-off, so that its walk waits rather than overrun the band.
  const freshCarried = served.some((on, g) => {
    if (!on || (s.groups[g]?.interval === "go" && s.served[g])) return false;
    const k = s.plan.stages.indexOf(stage);
    const before = s.plan.stages[(k - 1 + s.plan.stages.length) % s.plan.stages.length];
    return before?.member[g] === true;
  });
  return (
    (startMs <= windowStart + TICK_SLACK_MS && !freshCarried) || fits(s, stage, served, startMs, forceOffMs)
  );
}

/** When the stage shown may end: not before `floorMs`, nor before its ending groups' clearances from `nowMs`. */
interface EndOfShown {
  readonly floorMs: number;
  readonly nowMs: number;
}

/** What a stage may overrun its force-off by to run its minimum: the tick it may start late, and one more. */
const TICK_SLACK_MS = 200;

/** A stage's window end in the next cycle, from this cycle's end and the plan's splits (before that cycle's correction); k −1: the boundary. */
function predictedWindowEnd(s: SequencerState, k: number): number {
  let end = s.windowEndsMs[s.plan.stages.length - 1] as number;
  for (let j = 0; j <= k; j++) end += (s.plan.stages[j] as IntersectionPlan["stages"][number]).splitMs;
  return end;
}

/** The earliest the shown stage may end when `next` follows: no minimum go, clearance or red clearance cut. */
function minimumEnd(
  s: SequencerState,
  stage: IntersectionPlan["stages"][number],
  next: readonly boolean[],
): number {
  let endMs = 0;
  s.groups.forEach((timer, g) => {
    const group = s.intersection.groups[g];
    if (!group || timer.interval !== "go" || next[g]) return;
    endMs = Math.max(
      endMs,
      timer.sinceMs + minGoIn(s.intersection, stage, g) + group.clearanceMs + group.redClearanceMs,
    );
  });
  return endMs;
}

/**
 * The boundary has come and what is shown does not end there: the cycle rolls on — unless a plan
 * change is due at it (one scheduled too late to be prepared for, or re-decided at the last moment),
 * which then takes effect as soon as the clearances allow, never a boundary later.
 */
function atBoundary(
  s: SequencerState,
  run: ActuatedRun,
  boundaryMs: number,
  now: Now,
  events: SignalEvent[],
): SequencerState {
  const t = now.monoMs;
  // The boundary is now (this tick, or later than planned after a stall).
  if (!s.pending.some((p) => p.activationWallMs <= now.wallMs + IN_STEP_TOLERANCE_MS))
    return rollCycle(s, run, now, events);
  const choice = chooseNext(
    s,
    t + longestClearanceMs(s.intersection, s.served),
    s.plan.stages.length,
    boundaryMs,
    now,
    events,
  );
  invariant(
    choice !== "rest" && choice.next.activation !== null,
    () => `intersection ${s.intersection.id}: a plan change due at the boundary was not taken`,
  );
  const { next, pending } = choice;
  const stage = s.plan.stages[s.stage] as IntersectionPlan["stages"][number];
  const endMs = Math.max(
    t + endingClearanceMs(s.intersection, s.served, next.served),
    minimumEnd(s, stage, next.served),
  );
  return { ...s, pending, next, stagePlannedEndMs: endMs };
}

/** An actuated plan's cycle boundary passes while its coordinated stage stays green: the next cycle's windows begin. */
function rollCycle(s: SequencerState, run: ActuatedRun, now: Now, events: SignalEvent[]): SequencerState {
  const cycle = planCycle(s.plan, now.wallMs);
  events.push({
    type: "cycle-start",
    planId: s.plan.planId,
    offsetErrorMs: cycle.offsetErrorMs,
    correctionMs: cycle.correctionMs,
  });
  const ends = windowEnds(now.monoMs, cycle.durationsMs);
  // A stage started ahead of this cycle runs to its window end in it (its predicted one, corrected).
  const aheadStage = run.ahead && s.stage !== s.plan.coordinatedStage && s.next === null;
  // The coordinated stage, undecided, rests to its band's end in this cycle at least: a planned end left
  // from a cycle that passed (a stall, a hold) would end it with nothing chosen to follow.
  const coordinated = s.stage === s.plan.coordinatedStage && s.next === null;
  return {
    ...s,
    cycleDurationsMs: cycle.durationsMs,
    cycleStartMs: now.monoMs,
    windowEndsMs: ends,
    stagePlannedEndMs: aheadStage
      ? (ends[s.stage] as number)
      : coordinated
        ? Math.max(s.stagePlannedEndMs, ends[s.stage] as number)
        : s.stagePlannedEndMs,
    servedThisCycle: s.servedNextCycle,
    servedNextCycle: s.plan.stages.map(() => false),
    next: s.next ? { ...s.next, ahead: false } : null,
    actuated: { ...run, ahead: false },
    offsetErrorMs: cycle.offsetErrorMs,
    inStep: cycle.inStep,
    cycles: s.cycles + 1,
  };
}

/**
 * A plan change scheduled while an actuated plan runs: what follows the stage shown is chosen again
 * when the change is due at this cycle's boundary, or when the choice already took a change (always
 * safe: every interval is guarded when it ends).
 */
function redecide(
  s: SequencerState,
  pending: readonly PendingPlan[],
  activationWallMs: number,
  now: Now,
): SequencerState {
  const boundaryMs = s.windowEndsMs[s.plan.stages.length - 1] as number;
  const dueThisCycle = activationWallMs <= now.wallMs + (boundaryMs - now.monoMs) + IN_STEP_TOLERANCE_MS;
  if (s.mode !== "running" || (!dueThisCycle && !s.next?.activation)) return { ...s, pending };
  return { ...s, pending: withSuperseded(s, pending), next: null };
}

/** Every group's commanded aspect in this state. */
export function aspectsOf(s: SequencerState): Aspect[] {
  return s.intersection.groups.map((g, gi) => aspectOf(s, g.kind === "vehicle", g.scheduledFlash, gi));
}

function aspectOf(s: SequencerState, vehicle: boolean, scheduledFlash: "red" | "yellow", gi: number): Aspect {
  switch (s.mode) {
    case "startup-flash":
      return vehicle ? "red-flash" : "dark";
    case "flash":
      return vehicle ? (scheduledFlash === "yellow" ? "yellow-flash" : "red-flash") : "dark";
    case "startup-all-red":
    case "stopped":
      return vehicle ? "red" : "dont-walk";
    default: {
      const interval = (s.groups[gi] as GroupTimer).interval;
      if (interval === "go") return vehicle ? "green" : "walk";
      if (interval === "clearance") return vehicle ? "yellow" : "ped-clearance";
      return vehicle ? "red" : "dont-walk";
    }
  }
}
