import { nextCommonBoundary } from "../corridor/boundary.js";
import { invariant } from "../invariant.js";
import { IN_STEP_TOLERANCE_MS, type IntersectionPlan } from "../model.js";
import type { TimeReference } from "../time/time-reference.js";
import {
  actionLabel,
  changeInForce,
  nextChange,
  type Schedule,
  type ScheduleAction,
  type ScheduledChange,
} from "./calendar.js";

/**
 * One intersection's time-of-day schedule, run by its own gateway: a pure state machine
 * `(state, event, now) -> {state, effects}`. Every gateway of the corridor holds the same committed
 * schedule (pushed to all by the two-phase commit, or to none) and the same time reference, and from
 * them alone computes when each change takes effect — the first common cycle boundary at or after the
 * change's instant — so that the whole corridor switches at the same boundary with no message
 * exchanged, through broker and network loss.
 *
 * A manual plan change (`plan push`) overrides the schedule until a stated instant, until the next
 * scheduled change, or until the next schedule push (`hold`).
 */

/** A committed schedule as a gateway holds it: the calendar and this intersection's compiled plans. */
export interface CompiledSchedule {
  readonly kind: "schedule";
  readonly scheduleId: string;
  readonly version: number;
  /** The schedule bundle's content digest: with id and version, its identity (as a plan's). */
  readonly digest: string;
  readonly schedule: Schedule;
  /** The corridor's time reference the schedule was committed with (every gateway's own must match). */
  readonly timeReference: TimeReference;
  /** Every plan the schedule names, compiled for this intersection. */
  readonly plans: Readonly<Record<string, IntersectionPlan>>;
}

/** How long a manual plan change wins over the schedule. */
export type OverrideEnd =
  | { readonly kind: "until"; readonly untilWallMs: number }
  /**
   * `atWallMs`: that change's instant, found once when the override begins (null: none in the
   * calendar's horizon, so until the next schedule push): looking for it at every tick could scan a
   * year of a schedule that seldom changes.
   */
  | { readonly kind: "next-change"; readonly atWallMs?: number | null }
  | { readonly kind: "hold" };

export interface ManualOverride {
  readonly planId: string;
  readonly version: number;
  /** The instant the manual plan was committed for (the override counts from there). */
  readonly fromWallMs: number;
  readonly end: OverrideEnd;
  /** Who asked (the transaction's coordinator). */
  readonly by: string;
  /**
   * The manual plan's transaction: the controller holds the plan under it until its boundary, so an
   * override that ends first (a schedule push, an `until` before that boundary) withdraws it there.
   * Absent in an override stored before it was kept.
   */
  readonly txnId?: string;
}

/** What the runner last handed to the controller, so that each change is handed over once. */
export interface IssuedChange {
  /** The instant from which the change governs (its own, or later: the schedule's start, an override's end). */
  readonly fromWallMs: number;
  readonly action: ScheduleAction;
  /** The common cycle boundary it takes effect at. */
  readonly boundaryWallMs: number;
  /** The id the controller knows it by (a plan change's transaction id), to withdraw it if overridden. */
  readonly changeId: string;
  /**
   * When the runner itself must still act (enter flash; leave a scheduled flash for a plan): the
   * controller does those at once, so they wait for their instant here. Null: nothing left to do.
   */
  readonly actAtWallMs: number | null;
}

/** What a gateway keeps of its runner across a restart: the schedule that governs, from when, and the override. */
export interface ScheduleInForce {
  /** The schedule's key in the store's plans (committed-change.ts `scheduleKey`); null: none. */
  readonly scheduleKey: string | null;
  readonly version: number | null;
  readonly fromWallMs: number | null;
  readonly override: ManualOverride | null;
  /** The last committed changes (transaction ids) the runner took: a restart hands them again. */
  readonly taken?: readonly string[];
}

/** How many of the last committed changes the runner remembers having taken. */
export const MAX_TAKEN = 16;

export interface ScheduleRunnerState {
  readonly compiled: CompiledSchedule | null;
  /** The instant the committed schedule governs from (its transaction's activation instant). */
  readonly fromWallMs: number;
  readonly override: ManualOverride | null;
  readonly issued: IssuedChange | null;
  /** The schedule put the intersection in flash (and only then does it take it out). */
  readonly inScheduledFlash: boolean;
  /** The last committed changes taken (transaction ids, oldest first): taken again, they do nothing. */
  readonly taken: readonly string[];
}

/** What the controller runs and has waiting, as the shell sees it at a tick. */
export interface ControllerView {
  readonly planId: string;
  readonly version: number;
  /** Its cycle: a scheduled flash begins at a common boundary of the plan it ends. */
  readonly cycleMs: number;
  /** A plan change waits there for its boundary (or is chosen for the next cycle). */
  readonly waiting?: boolean;
}

export type ScheduleRunnerEvent =
  | { readonly type: "tick"; readonly controller: ControllerView }
  /** A schedule committed for the corridor: it governs from `fromWallMs`, and ends any manual override. */
  | {
      readonly type: "adopt";
      readonly compiled: CompiledSchedule;
      readonly fromWallMs: number;
      readonly txnId?: string;
    }
  /** A manual plan change committed for the corridor (`plan push`). */
  | { readonly type: "manual"; readonly override: ManualOverride; readonly txnId?: string }
  /**
   * A manual change cancelled before its instant (`plan cancel`, core/corridor/plan-cancel.ts): its
   * override ends, and the schedule governs again as if it had never come.
   */
  | { readonly type: "cancel-manual"; readonly txnId: string };

export type ScheduleRunnerEffect =
  | {
      readonly type: "schedule-plan";
      readonly plan: IntersectionPlan;
      readonly activationWallMs: number;
      readonly changeId: string;
    }
  /** Take back a plan change handed over earlier that has not taken effect (an override came first). */
  | { readonly type: "withdraw-plan"; readonly changeId: string }
  | { readonly type: "enter-flash" }
  | { readonly type: "leave-flash" }
  /** Make the schedule and the override survive a restart. */
  | {
      readonly type: "persist";
      readonly schedule: {
        readonly scheduleId: string;
        readonly version: number;
        readonly fromWallMs: number;
      } | null;
      readonly override: ManualOverride | null;
      readonly taken: readonly string[];
    }
  | { readonly type: "report"; readonly message: string };

export interface ScheduleRunnerStep {
  readonly state: ScheduleRunnerState;
  readonly effects: readonly ScheduleRunnerEffect[];
}

/**
 * How long before a change's instant its plan is handed to the controller: a plan handed over as
 * late as the boundary itself could miss it by a tick (the controller chooses the next cycle's plan as
 * its last stage starts), and then this intersection would switch a cycle after its neighbours.
 */
export const HAND_OVER_AHEAD_MS = 30_000;
/** A change found late (after a restart, or a schedule adopted late) takes effect no sooner than this. */
export const LATE_CHANGE_MARGIN_MS = 2_000;

export const NO_SCHEDULE: ScheduleRunnerState = {
  compiled: null,
  fromWallMs: 0,
  override: null,
  issued: null,
  inScheduledFlash: false,
  taken: [],
};

/** After a restart: the schedule and the override the store kept; nothing handed over yet. */
export function restoreScheduleRunner(
  compiled: CompiledSchedule | null,
  fromWallMs: number,
  override: ManualOverride | null,
  taken: readonly string[] = [],
): ScheduleRunnerState {
  const found = override && compiled ? withEndFound(override, compiled, fromWallMs) : override;
  return { ...NO_SCHEDULE, compiled, fromWallMs, override: found, taken };
}

export function stepScheduleRunner(
  state: ScheduleRunnerState,
  event: ScheduleRunnerEvent,
  nowWallMs: number,
): ScheduleRunnerStep {
  const effects: ScheduleRunnerEffect[] = [];
  if ((event.type === "adopt" || event.type === "manual") && event.txnId !== undefined) {
    // A change taken before a restart, handed again by the participant's resume: already in the state.
    if (state.taken.includes(event.txnId)) return { state, effects };
    state = { ...state, taken: [...state.taken, event.txnId].slice(-MAX_TAKEN) };
  }
  switch (event.type) {
    case "adopt": {
      const same =
        state.compiled?.scheduleId === event.compiled.scheduleId &&
        state.compiled.version === event.compiled.version &&
        state.fromWallMs === event.fromWallMs;
      if (same) return { state, effects };
      withdrawPending(state, effects, nowWallMs);
      const next: ScheduleRunnerState = {
        ...state,
        compiled: event.compiled,
        fromWallMs: event.fromWallMs,
        override: null,
        issued: null,
      };
      persist(next, effects);
      return { state: next, effects };
    }
    case "manual": {
      // Without a schedule a manual change overrides nothing (a later schedule governs); it is only
      // remembered as taken, so that a restart does not make it an override of that schedule.
      if (!state.compiled) {
        persist(state, effects);
        return { state, effects };
      }
      withdrawPending(state, effects, nowWallMs);
      // The manual plan is what runs now: a flash the schedule entered ends for it.
      if (state.inScheduledFlash) effects.push({ type: "leave-flash" });
      const next: ScheduleRunnerState = {
        ...state,
        override: withEndFound(event.override, state.compiled, state.fromWallMs),
        issued: null,
        inScheduledFlash: false,
      };
      persist(next, effects);
      return { state: next, effects };
    }
    case "cancel-manual": {
      if (state.override?.txnId !== event.txnId) return { state, effects };
      // Nothing handed over stands (the manual change withdrew the schedule's): the next tick hands
      // the schedule's plan over again.
      const next: ScheduleRunnerState = { ...state, override: null, issued: null };
      persist(next, effects);
      return { state: next, effects };
    }
    case "tick":
      return tick(state, event.controller, nowWallMs, effects);
  }
}

/** What the schedule says should run at `wallMs`, and from when; null before it governs or without one. */
export interface ScheduleTarget {
  readonly change: ScheduledChange;
  /** The instant the change governs from here: its own, or the schedule's start, or the override's end. */
  readonly fromWallMs: number;
}

/**
 * The instant a manual override ends, or null while it has no end yet in sight (hold, or no later
 * change in the schedule's horizon).
 */
export function overrideEndsAt(state: ScheduleRunnerState): number | null {
  const o = state.override;
  if (!o) return null;
  switch (o.end.kind) {
    case "hold":
      return null;
    case "until":
      return o.end.untilWallMs;
    case "next-change":
      if (o.end.atWallMs !== undefined) return o.end.atWallMs;
      return state.compiled ? nextChangeAfter(state.compiled, o.fromWallMs, state.fromWallMs) : null;
  }
}

function nextChangeAfter(compiled: CompiledSchedule, overrideFromWallMs: number, scheduleFromWallMs: number) {
  return nextChange(compiled.schedule, Math.max(overrideFromWallMs, scheduleFromWallMs))?.atWallMs ?? null;
}

/** An override until the schedule's next change, with that change's instant found once. */
function withEndFound(
  o: ManualOverride,
  compiled: CompiledSchedule,
  scheduleFromWallMs: number,
): ManualOverride {
  if (o.end.kind !== "next-change" || o.end.atWallMs !== undefined) return o;
  return {
    ...o,
    end: { kind: "next-change", atWallMs: nextChangeAfter(compiled, o.fromWallMs, scheduleFromWallMs) },
  };
}

function tick(
  state: ScheduleRunnerState,
  controller: ControllerView,
  nowWallMs: number,
  effects: ScheduleRunnerEffect[],
): ScheduleRunnerStep {
  const compiled = state.compiled;
  if (!compiled) return { state, effects };
  let s = state;
  const horizon = nowWallMs + HAND_OVER_AHEAD_MS;
  if (s.override) {
    const end = overrideEndsAt(s);
    if (end === null || horizon < end) return { state: s, effects };
    effects.push({
      type: "report",
      message: `manual plan ${s.override.planId} v${s.override.version} by ${s.override.by} ends at ${new Date(end).toISOString()}: the schedule takes over`,
    });
    withdrawPending(s, effects, nowWallMs);
    // The schedule governs again from the end: a restart before the handover must not hand over the
    // change in force before it (as if the override had never been).
    s = { ...s, override: null, issued: null, fromWallMs: Math.max(s.fromWallMs, end) };
    persist(s, effects);
    // Found late (a restart long after the end): a later change may already govern.
    const change = changeInForce(compiled.schedule, Math.max(end, horizon));
    return handOver(
      s,
      compiled,
      { change, fromWallMs: Math.max(end, change.atWallMs) },
      controller,
      nowWallMs,
      effects,
    );
  }
  if (horizon < s.fromWallMs) return { state: s, effects };
  const change = changeInForce(compiled.schedule, horizon);
  const since = actionSince(compiled.schedule, change, s.fromWallMs);
  const fromWallMs = Math.max(since, s.fromWallMs, s.issued?.fromWallMs ?? -Infinity);
  return handOver(s, compiled, { change, fromWallMs }, controller, nowWallMs, effects);
}

/** Events looked back at for the start of a run of events with one action (a day holds at most 48). */
const MAX_LOOK_BACK = 200;

/**
 * The instant the action in force (that of `change`, the latest event) began, no earlier than
 * `floorWallMs`: an event that repeats the action in force is no change, and its instant must not move
 * the boundary (a gateway that adopted the schedule earlier has already handed over the first one).
 */
function actionSince(
  schedule: CompiledSchedule["schedule"],
  change: ScheduledChange,
  floorWallMs: number,
): number {
  let c = change;
  for (let i = 0; i < MAX_LOOK_BACK && c.atWallMs > floorWallMs; i++) {
    const before = changeInForce(schedule, c.atWallMs - 1);
    if (actionLabel(before.action) !== actionLabel(c.action)) return c.atWallMs;
    c = before;
  }
  return Math.max(c.atWallMs, floorWallMs);
}

/** A plan change this close to its boundary may have been entered already by a peer (tolerance, clock skew). */
const DUE_MARGIN_MS = IN_STEP_TOLERANCE_MS + 1_000;

/**
 * Hands the change over to the controller once: a plan change ahead of its boundary (the controller
 * holds it until then); a flash, and a plan that ends a scheduled flash, when their instant comes (the
 * controller acts on those at once).
 */
function handOver(
  s: ScheduleRunnerState,
  compiled: CompiledSchedule,
  target: ScheduleTarget,
  controller: ControllerView,
  nowWallMs: number,
  effects: ScheduleRunnerEffect[],
): ScheduleRunnerStep {
  const { change, fromWallMs } = target;
  const action = change.action;
  const issued = s.issued;
  if (issued && issued.fromWallMs === fromWallMs && actionLabel(issued.action) === actionLabel(action)) {
    if (issued.actAtWallMs === null || nowWallMs < issued.actAtWallMs) return { state: s, effects };
    return act(s, compiled, issued, effects);
  }
  const changeId = `schedule ${compiled.scheduleId} v${compiled.version} ${change.dayPlan} ${new Date(fromWallMs).toISOString()}`;
  const earliest = Math.max(fromWallMs, nowWallMs + LATE_CHANGE_MARGIN_MS);
  // The change handed over before is taken back only while no intersection can have entered it: once
  // its boundary is (nearly) here, a peer whose cycle ended first runs it, so this one must too.
  const due =
    issued !== null &&
    issued.action.kind === "plan" &&
    issued.actAtWallMs === null &&
    issued.boundaryWallMs <= nowWallMs + DUE_MARGIN_MS;
  if (!due) withdrawPending(s, effects, nowWallMs);
  if (action.kind === "flash") {
    const boundaryWallMs = nextCommonBoundary(earliest, compiled.timeReference, controller.cycleMs);
    const actAtWallMs = s.inScheduledFlash ? null : boundaryWallMs;
    return {
      state: { ...s, issued: { fromWallMs, action, boundaryWallMs, changeId, actAtWallMs } },
      effects,
    };
  }
  const plan = compiled.plans[action.planId];
  invariant(
    plan !== undefined,
    () =>
      `schedule ${compiled.scheduleId} v${compiled.version} names plan ${action.planId}, which it does not hold compiled`,
  );
  if (s.inScheduledFlash) {
    const actAtWallMs = Math.max(fromWallMs, nowWallMs);
    const waiting = { fromWallMs, action, boundaryWallMs: actAtWallMs, changeId, actAtWallMs };
    return nowWallMs < actAtWallMs
      ? { state: { ...s, issued: waiting }, effects }
      : act(s, compiled, waiting, effects);
  }
  const boundaryWallMs = nextCommonBoundary(earliest, compiled.timeReference, plan.cycleMs);
  // Handed over even when the controller runs this plan now if another change waits there for its
  // boundary (a manual one, a scheduled one due before), which this one must supersede.
  const alreadyRunning =
    !due &&
    controller.waiting !== true &&
    controller.planId === plan.planId &&
    controller.version === plan.version;
  if (!alreadyRunning)
    effects.push({ type: "schedule-plan", plan, activationWallMs: boundaryWallMs, changeId });
  return {
    state: { ...s, issued: { fromWallMs, action, boundaryWallMs, changeId, actAtWallMs: null } },
    effects,
  };
}

/** The instant of a flash change (or of the end of one) has come. */
function act(
  s: ScheduleRunnerState,
  compiled: CompiledSchedule,
  issued: IssuedChange,
  effects: ScheduleRunnerEffect[],
): ScheduleRunnerStep {
  const done = { ...issued, actAtWallMs: null };
  if (issued.action.kind === "flash") {
    effects.push({ type: "enter-flash" });
    return { state: { ...s, issued: done, inScheduledFlash: true }, effects };
  }
  const plan = compiled.plans[issued.action.planId] as IntersectionPlan;
  // Out of flash through all-red; the plan is due at once, so the first cycle runs it.
  effects.push({
    type: "schedule-plan",
    plan,
    activationWallMs: issued.fromWallMs,
    changeId: issued.changeId,
  });
  effects.push({ type: "leave-flash" });
  return { state: { ...s, issued: done, inScheduledFlash: false }, effects };
}

function withdrawPending(s: ScheduleRunnerState, effects: ScheduleRunnerEffect[], nowWallMs: number): void {
  // Withdrawing a change the controller has already taken (or never got) does nothing.
  if (s.issued && s.issued.action.kind === "plan")
    effects.push({ type: "withdraw-plan", changeId: s.issued.changeId });
  // A manual plan still waiting for its instant ends with its override; one whose instant has come is
  // due (a peer whose cycle ended first runs it already), and stays.
  if (s.override?.txnId !== undefined && s.override.fromWallMs > nowWallMs + DUE_MARGIN_MS)
    effects.push({ type: "withdraw-plan", changeId: s.override.txnId });
}

function persist(s: ScheduleRunnerState, effects: ScheduleRunnerEffect[]): void {
  effects.push({
    type: "persist",
    schedule: s.compiled
      ? { scheduleId: s.compiled.scheduleId, version: s.compiled.version, fromWallMs: s.fromWallMs }
      : null,
    override: s.override,
    taken: s.taken,
  });
}

/** Why the plan in force runs, for the status: the schedule, a manual change (until when), or neither. */
export type ScheduleReason =
  | { readonly kind: "none" }
  | {
      readonly kind: "scheduled";
      readonly dayPlan: string;
      readonly action: string;
      readonly sinceWallMs: number;
    }
  | {
      readonly kind: "manual";
      readonly planId: string;
      readonly by: string;
      readonly untilWallMs: number | null;
      readonly hold: boolean;
    }
  | { readonly kind: "pending"; readonly fromWallMs: number };

/** The status's view of the schedule at `nowWallMs`: why, and the next change. */
export function scheduleView(
  s: ScheduleRunnerState,
  nowWallMs: number,
): { reason: ScheduleReason; next: ScheduledChange | null } {
  const compiled = s.compiled;
  if (!compiled) return { reason: { kind: "none" }, next: null };
  if (s.override) {
    const end = overrideEndsAt(s);
    return {
      reason: {
        kind: "manual",
        planId: s.override.planId,
        by: s.override.by,
        untilWallMs: end,
        hold: s.override.end.kind === "hold",
      },
      // What comes next is the schedule taking over, at the override's end.
      next: end === null ? null : { ...changeInForce(compiled.schedule, end), atWallMs: end },
    };
  }
  if (nowWallMs < s.fromWallMs)
    return {
      reason: { kind: "pending", fromWallMs: s.fromWallMs },
      next: { ...changeInForce(compiled.schedule, s.fromWallMs), atWallMs: s.fromWallMs },
    };
  const change = changeInForce(compiled.schedule, nowWallMs);
  return {
    reason: {
      kind: "scheduled",
      dayPlan: change.dayPlan,
      action: actionLabel(change.action),
      sinceWallMs: Math.max(change.atWallMs, s.fromWallMs),
    },
    next: nextChange(compiled.schedule, nowWallMs),
  };
}

/** The plan a restarted gateway should start with by the schedule, or null (no schedule, an override, or flash). */
export function scheduledPlanAt(s: ScheduleRunnerState, nowWallMs: number): IntersectionPlan | null {
  const compiled = s.compiled;
  if (!compiled || s.override || nowWallMs < s.fromWallMs) return null;
  const action = changeInForce(compiled.schedule, nowWallMs).action;
  return action.kind === "plan" ? (compiled.plans[action.planId] ?? null) : null;
}
