import { invariant } from "../invariant.js";
import { addDays, type CivilDate, formatDate, instantOfLocal, localTimeOf, offsetAt } from "../time/zone.js";
import {
  type DayPlanEvent,
  type Schedule,
  type ScheduledChange,
  type ScheduleAction,
  sameAction,
} from "./calendar-model.js";
import { dayPlanFor } from "./calendar-rules.js";

/**
 * When a schedule's events happen. An event's instant is its local date and time read in the zone with
 * zone.ts's rule (in a spring-forward gap: the gap's end; in a fall-back fold: the first occurrence).
 * That reading keeps local order, so the events of all days, taken in (date, time of day) order, have
 * non-decreasing instants: the event in force at an instant is the last one in that order whose instant
 * is at or before it, and two events at one instant (a gap) leave the later one in force.
 *
 * Cost: the gateway asks once a second, the simulator far more often. A day whose offset does not
 * change reads its events' instants as plain arithmetic (two zone lookups to know that); only a day near
 * an offset change asks instantOfLocal for each event it looks at.
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * A fold repeats local times that first happened before the change: a day whose offset is steady from
 * its midnight on must also have had it this long before, or its first hours may have happened earlier
 * (America/Havana repeats 00:00–01:00; America/Goose_Bay, to 2010, fell back from 00:01 to 23:01 the
 * day before). The tz database's folds since 1990 are at most 7 hours (Antarctica/Vostok, 1994).
 */
const FOLD_MARGIN_MS = 12 * HOUR_MS;

const DEFAULT_HORIZON_DAYS = 400;
/** The longest span changesBetween walks, day by day: a longer one is a caller's mistake, not a need. */
const MAX_SPAN_DAYS = 3660;

/** One local date of the schedule: its day plan and where its events fall. */
interface Day {
  readonly date: CivilDate;
  readonly dayPlan: string;
  readonly events: readonly DayPlanEvent[];
  /** The day's offset when it holds all day (no change near it), else undefined. */
  readonly steadyOffset: number | undefined;
  /** The best guess of the next day's offset. */
  readonly offsetGuess: number;
}

/** What zone.ts's Date.UTC reading of a local date and time gives before the offset is taken off. */
function localMidnight(date: CivilDate): number {
  return Date.UTC(date.year, date.month - 1, date.day);
}

function instantOf(s: Schedule, day: Day, atMs: number): number {
  return day.steadyOffset !== undefined
    ? localMidnight(day.date) + atMs - day.steadyOffset
    : instantOfLocal(s.timeZone, day.date, atMs);
}

/**
 * The date's offset if it is the same from a fold margin before the date's midnight to its end, else
 * undefined. Zones change their offset at most once in such a window (in the tz database since 1990 no
 * two changes of a zone are less than four days apart), so equal offsets at its ends mean none between.
 */
function steadyOffsetOf(zone: string, date: CivilDate, guess: number): { steady?: number; guess: number } {
  const midnight = localMidnight(date);
  for (let attempt = 0; attempt < 2; attempt++) {
    const start = midnight - guess;
    const before = offsetAt(zone, start - FOLD_MARGIN_MS);
    const end = offsetAt(zone, start + DAY_MS - 1);
    if (before === guess && end === guess) return { steady: guess, guess };
    // A change in the window: the day is read event by event.
    if (before !== end) return { guess: end };
    // Steady, but not at the guessed offset (a guess from across a change): try the one read.
    guess = end;
  }
  return { guess };
}

function dayOf(s: Schedule, date: CivilDate, offsetGuess: number): Day {
  const { dayPlan } = dayPlanFor(s, date);
  invariant(
    Object.hasOwn(s.dayPlans, dayPlan),
    () => `schedule ${s.id} names day plan "${dayPlan}", which it does not define`,
  );
  const events = s.dayPlans[dayPlan] as readonly DayPlanEvent[];
  invariant(events.length > 0, () => `day plan "${dayPlan}" of schedule ${s.id} has no events`);
  invariant(
    events.every((e, i) => i === 0 || (events[i - 1] as DayPlanEvent).atMs <= e.atMs),
    () => `day plan "${dayPlan}" of schedule ${s.id} is not sorted by time: the loader sorts it`,
  );
  const offset = steadyOffsetOf(s.timeZone, date, offsetGuess);
  return {
    date: { year: date.year, month: date.month, day: date.day },
    dayPlan,
    events,
    steadyOffset: offset.steady,
    offsetGuess: offset.guess,
  };
}

/** The last index whose event passes `atOrBefore` (true for a prefix of the events), or -1. */
function lastIndex(events: readonly DayPlanEvent[], atOrBefore: (e: DayPlanEvent) => boolean): number {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (atOrBefore(events[mid] as DayPlanEvent)) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

function changeOf(s: Schedule, day: Day, index: number, atWallMs?: number): ScheduledChange {
  const event = eventAt(day, index);
  return {
    atWallMs: atWallMs ?? instantOf(s, day, event.atMs),
    date: day.date,
    atMs: event.atMs,
    dayPlan: day.dayPlan,
    action: event.action,
  };
}

function eventAt(day: Day, index: number): DayPlanEvent {
  return day.events[index] as DayPlanEvent;
}

/** The event in force at wallMs: its day and its index there. */
function eventInForce(s: Schedule, wallMs: number): { day: Day; index: number } {
  invariant(Number.isFinite(wallMs), () => `instant ${wallMs} is not a number of milliseconds`);
  const local = localTimeOf(s.timeZone, wallMs);
  const offset = localMidnight(local) + local.msOfDay - wallMs;
  const today = dayOf(s, local, offset);
  if (today.steadyOffset === offset) {
    // The day's instants follow its times of day, and the next day's all come after its end.
    const index = lastIndex(today.events, (e) => e.atMs <= local.msOfDay);
    if (index >= 0) return { day: today, index };
  } else {
    // A fold across midnight may have run the next day's first events already.
    const tomorrow = dayOf(s, addDays(local, 1), offset);
    for (const day of [tomorrow, today]) {
      const index = lastIndex(day.events, (e) => instantOf(s, day, e.atMs) <= wallMs);
      if (index >= 0) return { day, index };
    }
  }
  // Before the day's first event: the previous day's last event, which happened before this day began.
  const yesterday = dayOf(s, addDays(local, -1), offset);
  return { day: yesterday, index: yesterday.events.length - 1 };
}

/** The event in force at wallMs: the latest event whose instant is <= wallMs (ties: the later in local order). */
export function changeInForce(s: Schedule, wallMs: number): ScheduledChange {
  const { day, index } = eventInForce(s, wallMs);
  return changeOf(s, day, index);
}

/**
 * Events with fromMs < atWallMs <= toMs whose action differs from the one in force just before, in
 * order, at most max. Of events at one instant (a gap) only the last counts: the others are never in force.
 * The span is at most ten years (MAX_SPAN_DAYS).
 */
export function changesBetween(s: Schedule, fromMs: number, toMs: number, max: number): ScheduledChange[] {
  invariant(
    Number.isFinite(toMs) && toMs - fromMs <= MAX_SPAN_DAYS * DAY_MS,
    () => `changes asked for up to ${toMs}, more than ${MAX_SPAN_DAYS} days after ${fromMs}`,
  );
  const changes: ScheduledChange[] = [];
  if (max <= 0 || toMs <= fromMs) return changes;
  let { day, index } = eventInForce(s, fromMs);
  let inForce: ScheduleAction = eventAt(day, index).action;
  // The latest event seen, held until the next one shows it is not overtaken at the same instant.
  let pending: { day: Day; index: number; atWallMs: number } | undefined;
  for (;;) {
    index++;
    if (index >= day.events.length) {
      day = dayOf(s, addDays(day.date, 1), day.offsetGuess);
      index = 0;
    }
    const atWallMs = instantOf(s, day, eventAt(day, index).atMs);
    invariant(
      pending === undefined || atWallMs >= pending.atWallMs,
      () =>
        `schedule ${s.id}: an event of ${formatDate(day.date)} falls before the one it follows in ${s.timeZone}`,
    );
    if (pending !== undefined && atWallMs > pending.atWallMs) {
      const action = eventAt(pending.day, pending.index).action;
      if (!sameAction(action, inForce)) {
        changes.push(changeOf(s, pending.day, pending.index, pending.atWallMs));
        inForce = action;
        if (changes.length >= max) return changes;
      }
    }
    // Every later event is later still: each day's events come after the previous day's.
    if (atWallMs > toMs) return changes;
    pending = { day, index, atWallMs };
  }
}

/** The first change (action differs) after wallMs, looking at most `horizonDays` ahead (default 400); null if none. */
export function nextChange(
  s: Schedule,
  wallMs: number,
  horizonDays = DEFAULT_HORIZON_DAYS,
): ScheduledChange | null {
  return changesBetween(s, wallMs, wallMs + horizonDays * DAY_MS, 1)[0] ?? null;
}
