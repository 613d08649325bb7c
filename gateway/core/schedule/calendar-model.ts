import type { CivilDate } from "../time/zone.js";

/**
 * A time-of-day schedule as the core reads it (issue 15): a calendar selects a day plan for each local
 * date, a day plan lists local times of day and actions. The schedule file's syntax (HH:MM, weekday
 * names, MM-DD) is the config layer's; here times are milliseconds and weekdays ISO numbers.
 */

export type ScheduleAction = { readonly kind: "plan"; readonly planId: string } | { readonly kind: "flash" };

/** `atMs`: milliseconds after local midnight, 0 … 24 h − 1. */
export interface DayPlanEvent {
  readonly atMs: number;
  readonly action: ScheduleAction;
}

/** Weekdays are ISO numbers, 1 Monday … 7 Sunday. Precedence: date > yearly > range > weekdays. */
export type CalendarRule =
  | {
      readonly kind: "weekdays";
      readonly weekdays: readonly number[];
      readonly dayPlan: string;
      readonly name?: string;
    }
  | {
      readonly kind: "range";
      readonly from: CivilDate;
      readonly to: CivilDate;
      /** All seven when the file gives none. */
      readonly weekdays: readonly number[];
      readonly dayPlan: string;
      readonly name?: string;
    }
  | {
      readonly kind: "yearly";
      readonly month: number;
      readonly day: number;
      readonly dayPlan: string;
      readonly name?: string;
    }
  | { readonly kind: "date"; readonly date: CivilDate; readonly dayPlan: string; readonly name?: string };

export interface Schedule {
  readonly id: string;
  readonly version: number;
  /** The corridor's IANA zone: the schedule's local times are read in it. */
  readonly timeZone: string;
  /** Each sorted by `atMs` and non-empty (scheduleProblems does not need them sorted). */
  readonly dayPlans: Readonly<Record<string, readonly DayPlanEvent[]>>;
  readonly calendar: readonly CalendarRule[];
}

/** One event of the schedule as it happens: its instant (gap/fold rule applied) and what it does. */
export interface ScheduledChange {
  readonly atWallMs: number;
  /** The local date whose day plan holds the event. */
  readonly date: CivilDate;
  /** The event's nominal local time of day: differs from the instant's own local time in a DST gap. */
  readonly atMs: number;
  readonly dayPlan: string;
  readonly action: ScheduleAction;
}

export function sameAction(a: ScheduleAction, b: ScheduleAction): boolean {
  return a.kind === "flash" ? b.kind === "flash" : b.kind === "plan" && a.planId === b.planId;
}

/** The plan id, or `flash`. */
export function actionLabel(a: ScheduleAction): string {
  return a.kind === "flash" ? "flash" : a.planId;
}
