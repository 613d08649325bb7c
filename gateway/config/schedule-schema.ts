import { z } from "zod";
import { identifier, quoted } from "./identifier.js";

/**
 * The shape of a schedule file (`kind: schedule`): which plan the corridor runs at which local time
 * of which day. Its time zone is the corridor's (`timeReference.timeZone`). The rules that span
 * fields (precedence overlaps, weekdays without a plan, unknown or unused day plans, plans the
 * corridor does not have) are checked after the shape, by `greenwave config check`.
 */

export const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;

/** Limits: a real corridor has a handful of each; these only keep a mistaken file from growing unbounded. */
export const MAX_DAY_PLANS = 32;
export const MAX_EVENTS_PER_DAY_PLAN = 48;
export const MAX_CALENDAR_RULES = 200;

const timeOfDay = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, {
  error: (issue) => `${quoted(issue.input)} is not a time of day: write HH:MM, from 00:00 to 23:59`,
});

/** Days in a month, February of a leap year included (`yearly: "02-29"` is a leap day's holiday). */
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

const isLeap = (year: number) => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;

/** A real date (2026-02-30 is not) of years a schedule can mean. */
function isCalendarDate(text: string): boolean {
  const [year, month, day] = text.split("-").map(Number) as [number, number, number];
  const max = month === 2 && !isLeap(year) ? 28 : (DAYS_IN_MONTH[month - 1] ?? 0);
  return year >= 1970 && year <= 9999 && month >= 1 && month <= 12 && day >= 1 && day <= max;
}

const date = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, { error: (issue) => `${quoted(issue.input)}: write a date as YYYY-MM-DD` })
  .refine(isCalendarDate, { error: (issue) => `${quoted(issue.input)} is not a date of the calendar (years 1970–9999)`,
  });

const monthDay = z
  .string()
  .regex(/^\d{2}-\d{2}$/, { error: (issue) => `${quoted(issue.input)}: write a yearly date as MM-DD` })
  .refine((md) => isCalendarDate(`2000-${md}`), {
    error: (issue) => `${quoted(issue.input)} is not a day of the year`,
  });

export const scheduleEventSchema = z.strictObject({
  /** Local time of day, HH:MM (00:00–23:59). */
  at: timeOfDay.describe("Local time of day, HH:MM (00:00–23:59), in the corridor's time zone"),
  /** A plan id of the corridor (a file in its plans directory), or `flash`. */
  action: identifier.describe("A plan id of the corridor (a file in its plans directory), or flash"),
});

const weekdays = z.array(z.enum(WEEKDAYS, "must be a weekday: mon, tue, wed, thu, fri, sat or sun")).min(1).max(7);

/**
 * One calendar rule. Written as one object with optional fields rather than a union of four shapes,
 * so that a mistake gets a message about that rule rather than "matches none of four shapes".
 */
export const calendarRuleSchema = z
  .strictObject({
    /** Weekdays the rule applies on (alone: every week; with from/to: within the range). */
    weekdays: weekdays.optional(),
    /** First day of a range, YYYY-MM-DD (with `to`). */
    from: date.describe("First day of a range, YYYY-MM-DD").optional(),
    /** Last day of a range, YYYY-MM-DD, included. */
    to: date.describe("Last day of a range, YYYY-MM-DD, included").optional(),
    /** A day every year, MM-DD (a holiday); 02-29 applies in leap years only. */
    yearly: monthDay.describe("A day every year, MM-DD; 02-29 applies in leap years only").optional(),
    /** One date, YYYY-MM-DD. */
    date: date.describe("One date, YYYY-MM-DD").optional(),
    /** The day plan of the days the rule matches. */
    dayPlan: identifier,
    /** For the operator: what the rule is (Christmas Day, summer holidays). */
    name: z.string().min(1).max(100).optional(),
  })
  .superRefine((rule, ctx) => {
    const kinds = [
      rule.date !== undefined && "date",
      rule.yearly !== undefined && "yearly",
      (rule.from !== undefined || rule.to !== undefined) && "from/to",
    ].filter((k): k is string => k !== false);
    if (kinds.length > 1) {
      ctx.addIssue({
        code: "custom",
        message: `a rule is one of: weekdays, a range (from/to, with weekdays or not), yearly, date; this one has ${kinds.join(" and ")}: make it two rules`,
      });
      return;
    }
    if ((rule.date !== undefined || rule.yearly !== undefined) && rule.weekdays !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["weekdays"],
        message: `a ${rule.date !== undefined ? "date" : "yearly"} rule applies whatever the weekday: remove weekdays`,
      });
    }
    if ((rule.from === undefined) !== (rule.to === undefined)) {
      ctx.addIssue({
        code: "custom",
        message: `a range needs both from and to (give to: ${rule.from ?? rule.to} for a single day, or use date)`,
      });
    } else if (rule.from !== undefined && rule.to !== undefined && rule.from > rule.to) {
      ctx.addIssue({
        code: "custom",
        path: ["to"],
        message: `the range ends (${rule.to}) before it starts (${rule.from})`,
      });
    }
    if (kinds.length === 0 && rule.weekdays === undefined) {
      ctx.addIssue({
        code: "custom",
        message: "a rule says which days it matches: weekdays, from/to, yearly or date",
      });
    }
  });

const PRECEDENCE =
  "Which day plan a day runs: the rule of the highest precedence that matches it, highest first: " +
  "date (one day) > yearly (a holiday) > range (from/to) > weekdays. Two rules of the same precedence " +
  "that can match the same day are an error, and every weekday needs a weekdays rule.";

export const scheduleFileSchema = z
  .strictObject({
    kind: z.literal("schedule"),
    id: identifier,
    version: z.number().int().min(1),
    /** The corridor the schedule is for; its time zone is the schedule's. */
    corridor: identifier,
    description: z.string().max(500).optional(),
    /** Named day plans: each a list of events, the action in force from each local time of day on. */
    dayPlans: z
      .record(
        identifier,
        z
          .array(scheduleEventSchema)
          .min(1, "a day plan needs at least one event")
          .max(MAX_EVENTS_PER_DAY_PLAN, `a day plan has at most ${MAX_EVENTS_PER_DAY_PLAN} events`),
      )
      .refine((plans) => Object.keys(plans).length >= 1, "a schedule needs at least one day plan")
      .refine(
        (plans) => Object.keys(plans).length <= MAX_DAY_PLANS,
        `a schedule has at most ${MAX_DAY_PLANS} day plans`,
      ),
    calendar: z
      .array(calendarRuleSchema)
      .min(1, "a schedule needs at least one calendar rule")
      .max(MAX_CALENDAR_RULES, `a schedule has at most ${MAX_CALENDAR_RULES} calendar rules`)
      .describe(PRECEDENCE),
  })
  .describe(
    `A corridor's schedule: which plan (or flash) runs at which local time, in the corridor's time zone. ${PRECEDENCE}`,
  );

export type ScheduleFile = z.output<typeof scheduleFileSchema>;
export type CalendarRuleFile = z.output<typeof calendarRuleSchema>;
