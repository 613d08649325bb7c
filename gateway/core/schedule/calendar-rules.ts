import { invariant } from "../invariant.js";
import { type CivilDate, formatDate } from "../time/zone.js";
import type { CalendarRule, Schedule } from "./calendar-model.js";

/** Which rule picks a date's day plan: the highest matching kind; among equals (an error), the first. */
const PRECEDENCE: Readonly<Record<CalendarRule["kind"], number>> = {
  date: 4,
  yearly: 3,
  range: 2,
  weekdays: 1,
};

/** The file's names of the ISO weekdays, index 0 unused. */
export const WEEKDAY_NAMES = ["", "mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;

const DAY_MS = 86_400_000;

/** Days since 1970-01-01 (negative before): orders dates and counts the days between them. */
export function dayNumber(date: CivilDate): number {
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0–99 as 1900–1999.
  return Math.round(new Date(0).setUTCFullYear(date.year, date.month - 1, date.day) / DAY_MS);
}

/** ISO weekday, 1 Monday … 7 Sunday. */
export function weekdayOf(date: CivilDate): number {
  return ((((dayNumber(date) + 3) % 7) + 7) % 7) + 1;
}

export function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

export function daysInMonth(year: number, month: number): number {
  return month === 2 ? (isLeapYear(year) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** A real calendar date (2026-02-30 is not). */
export function isCivilDate(date: CivilDate): boolean {
  return (
    Number.isInteger(date.year) &&
    date.year >= 1 &&
    date.year <= 9999 &&
    Number.isInteger(date.month) &&
    date.month >= 1 &&
    date.month <= 12 &&
    Number.isInteger(date.day) &&
    date.day >= 1 &&
    date.day <= daysInMonth(date.year, date.month)
  );
}

function ruleMatches(rule: CalendarRule, date: CivilDate, day: number, weekday: number): boolean {
  switch (rule.kind) {
    case "date":
      return rule.date.year === date.year && rule.date.month === date.month && rule.date.day === date.day;
    case "yearly":
      // 02-29 matches only where that date exists: leap years.
      return rule.month === date.month && rule.day === date.day;
    case "range":
      return dayNumber(rule.from) <= day && day <= dayNumber(rule.to) && rule.weekdays.includes(weekday);
    case "weekdays":
      return rule.weekdays.includes(weekday);
  }
}

/** The day plan of a local date, and the rule that chose it (date > yearly > range > weekdays). */
export function dayPlanFor(s: Schedule, date: CivilDate): { dayPlan: string; rule: CalendarRule } {
  const day = dayNumber(date);
  const weekday = weekdayOf(date);
  let chosen: CalendarRule | undefined;
  for (const rule of s.calendar) {
    if (
      (chosen === undefined || PRECEDENCE[rule.kind] > PRECEDENCE[chosen.kind]) &&
      ruleMatches(rule, date, day, weekday)
    )
      chosen = rule;
  }
  invariant(
    chosen !== undefined,
    () =>
      `schedule ${s.id} v${s.version} has no calendar rule for ${formatDate(date)} (${WEEKDAY_NAMES[weekday]}): ` +
      "a schedule must pass scheduleProblems before it is run",
  );
  return { dayPlan: chosen.dayPlan, rule: chosen };
}
