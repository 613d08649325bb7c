import { addDays, type CivilDate, formatDate } from "../time/zone.js";
import type { CalendarRule, Schedule } from "./calendar-model.js";
import { dayNumber, isCivilDate, WEEKDAY_NAMES, weekdayOf } from "./calendar-rules.js";

/**
 * What makes a schedule unfit to run, each with a path into the schedule file (`dayPlans.weekday[2].at`,
 * `calendar[3].weekdays[0]`): rules of equal precedence that can pick the same day, weekdays no rule
 * covers, two events at one time, day plans named but not defined or defined but not used, and the
 * values the core relies on (times within the day, real dates). Events are indexed as the schedule
 * holds them, sorted or not: a loader that sorted them maps the indexes back to the file's.
 */

type Problem = { path: (string | number)[]; message: string };

const DAY_MS = 86_400_000;

export function scheduleProblems(s: Schedule): Problem[] {
  return [...dayPlanProblems(s), ...ruleValueProblems(s), ...overlapProblems(s), ...coverageProblems(s)];
}

/** `calendar[3] (Christmas Day)`. */
function ruleRef(s: Schedule, index: number): string {
  const name = s.calendar[index]?.name;
  return name === undefined ? `calendar[${index}]` : `calendar[${index}] (${name})`;
}

function timeOfDay(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  const hh = String(Math.floor(minutes / 60)).padStart(2, "0");
  const mm = String(minutes % 60).padStart(2, "0");
  return ms % 60_000 === 0 ? `${hh}:${mm}` : `${hh}:${mm} (+${ms % 60_000} ms)`;
}

const mmdd = (month: number, day: number) =>
  `${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`;

function dayPlanProblems(s: Schedule): Problem[] {
  const problems: Problem[] = [];
  const used = new Set(s.calendar.map((rule) => rule.dayPlan));
  for (const [name, events] of Object.entries(s.dayPlans)) {
    if (events.length === 0)
      problems.push({
        path: ["dayPlans", name],
        message: `day plan "${name}" has no events: give it at least one ({ at: "06:00", action: … }) or remove it`,
      });
    const seen = new Set<number>();
    events.forEach((event, index) => {
      if (!Number.isInteger(event.atMs) || event.atMs < 0 || event.atMs >= DAY_MS) {
        problems.push({
          path: ["dayPlans", name, index, "at"],
          message: `time ${Number.isInteger(event.atMs) && event.atMs >= 0 ? timeOfDay(event.atMs) : `${event.atMs} ms`} is outside the day: an event's time is 00:00 to 23:59`,
        });
        return;
      }
      if (seen.has(event.atMs))
        problems.push({
          path: ["dayPlans", name, index, "at"],
          message: `day plan "${name}" has two events at ${timeOfDay(event.atMs)}: only one can be in force; give each its own time or remove one`,
        });
      seen.add(event.atMs);
    });
    if (!used.has(name))
      problems.push({
        path: ["dayPlans", name],
        message: `day plan "${name}" is not used by any calendar rule: name it in a rule's dayPlan, or remove it`,
      });
  }
  return problems;
}

function weekdayProblems(weekdays: readonly number[], index: number): Problem[] {
  const problems: Problem[] = [];
  weekdays.forEach((weekday, k) => {
    if (!Number.isInteger(weekday) || weekday < 1 || weekday > 7)
      problems.push({
        path: ["calendar", index, "weekdays", k],
        message: `weekday ${weekday} is not a weekday: use mon, tue, wed, thu, fri, sat or sun`,
      });
  });
  return problems;
}

function dateProblem(date: CivilDate, path: (string | number)[]): Problem[] {
  return isCivilDate(date)
    ? []
    : [{ path, message: `${formatDate(date)} is not a calendar date: give a real date as YYYY-MM-DD` }];
}

/** Values a rule needs to mean anything: real dates, weekdays 1–7, a defined day plan. */
function ruleValueProblems(s: Schedule): Problem[] {
  const problems: Problem[] = [];
  const defined = Object.keys(s.dayPlans);
  s.calendar.forEach((rule, i) => {
    switch (rule.kind) {
      case "weekdays":
        if (rule.weekdays.length === 0)
          problems.push({
            path: ["calendar", i, "weekdays"],
            message: `${ruleRef(s, i)} lists no weekdays, so it picks no day: list at least one or remove the rule`,
          });
        problems.push(...weekdayProblems(rule.weekdays, i));
        break;
      case "range":
        problems.push(
          ...dateProblem(rule.from, ["calendar", i, "from"]),
          ...dateProblem(rule.to, ["calendar", i, "to"]),
        );
        if (isCivilDate(rule.from) && isCivilDate(rule.to) && dayNumber(rule.to) < dayNumber(rule.from))
          problems.push({
            path: ["calendar", i, "to"],
            message: `${ruleRef(s, i)} ends (${formatDate(rule.to)}) before it starts (${formatDate(rule.from)}): from must be on or before to`,
          });
        if (rule.weekdays.length === 0)
          problems.push({
            path: ["calendar", i, "weekdays"],
            message: `${ruleRef(s, i)} lists no weekdays, so it picks no day: list at least one, or leave weekdays out for every day`,
          });
        problems.push(...weekdayProblems(rule.weekdays, i));
        break;
      case "yearly":
        // Checked against a leap year: 02-29 is a holiday of the years that have it.
        if (!isCivilDate({ year: 2000, month: rule.month, day: rule.day }))
          problems.push({
            path: ["calendar", i, "yearly"],
            message: `${mmdd(rule.month, rule.day)} is not a day of the year: give a real date as MM-DD`,
          });
        break;
      case "date":
        problems.push(...dateProblem(rule.date, ["calendar", i, "date"]));
        break;
    }
    if (!Object.hasOwn(s.dayPlans, rule.dayPlan))
      problems.push({
        path: ["calendar", i, "dayPlan"],
        message:
          `day plan "${rule.dayPlan}" is not defined: define it under dayPlans, or name one of ` +
          (defined.length === 0 ? "none (dayPlans is empty)" : defined.map((name) => `"${name}"`).join(", ")),
      });
  });
  return problems;
}

const equalPrecedence = (kind: string) =>
  `${kind} rules have equal precedence, so they must not pick the same day`;

/** Two rules of one precedence that can pick the same day: which wins would be the file's order, unsaid. */
function overlapProblems(s: Schedule): Problem[] {
  const problems: Problem[] = [];
  const weekdayRule = new Map<number, number>();
  const yearlyRule = new Map<string, number>();
  const dateRule = new Map<string, number>();
  const ranges: { index: number; rule: Extract<CalendarRule, { kind: "range" }> }[] = [];
  s.calendar.forEach((rule, i) => {
    switch (rule.kind) {
      case "weekdays":
        rule.weekdays.forEach((weekday, k) => {
          const earlier = weekdayRule.get(weekday);
          if (earlier === undefined) weekdayRule.set(weekday, i);
          else if (earlier !== i)
            problems.push({
              path: ["calendar", i, "weekdays", k],
              message: `${WEEKDAY_NAMES[weekday] ?? weekday} is already in ${ruleRef(s, earlier)}: ${equalPrecedence("weekdays")}; remove it from one of them`,
            });
        });
        break;
      case "yearly": {
        const key = mmdd(rule.month, rule.day);
        const earlier = yearlyRule.get(key);
        if (earlier === undefined) yearlyRule.set(key, i);
        else
          problems.push({
            path: ["calendar", i, "yearly"],
            message: `${key} is already given by ${ruleRef(s, earlier)}: ${equalPrecedence("yearly")}; remove one`,
          });
        break;
      }
      case "date": {
        const key = formatDate(rule.date);
        const earlier = dateRule.get(key);
        if (earlier === undefined) dateRule.set(key, i);
        else
          problems.push({
            path: ["calendar", i, "date"],
            message: `${key} is already given by ${ruleRef(s, earlier)}: ${equalPrecedence("date")}; remove one`,
          });
        break;
      }
      case "range": {
        if (!isCivilDate(rule.from) || !isCivilDate(rule.to)) break;
        for (const earlier of ranges) {
          const common = firstCommonDay(earlier.rule, rule);
          if (common !== undefined) {
            problems.push({
              path: ["calendar", i],
              message:
                `${ruleRef(s, i)} (${formatDate(rule.from)} to ${formatDate(rule.to)}) and ${ruleRef(s, earlier.index)} ` +
                `(${formatDate(earlier.rule.from)} to ${formatDate(earlier.rule.to)}) both pick ${formatDate(common)} ` +
                `(${WEEKDAY_NAMES[weekdayOf(common)]}): ${equalPrecedence("range")}; ` +
                "shorten one, or give them weekdays of their own",
            });
            break;
          }
        }
        ranges.push({ index: i, rule });
        break;
      }
    }
  });
  return problems;
}

/** The first day both ranges pick: within a week of the start of their common dates, or none. */
function firstCommonDay(
  a: Extract<CalendarRule, { kind: "range" }>,
  b: Extract<CalendarRule, { kind: "range" }>,
): CivilDate | undefined {
  const [startA, startB] = [dayNumber(a.from), dayNumber(b.from)];
  const first = startA >= startB ? a.from : b.from;
  const last = Math.min(dayNumber(a.to), dayNumber(b.to));
  for (let k = 0; k < 7 && dayNumber(first) + k <= last; k++) {
    const day = addDays(first, k);
    const weekday = weekdayOf(day);
    if (a.weekdays.includes(weekday) && b.weekdays.includes(weekday)) return day;
  }
  return undefined;
}

/** Weekdays rules are the fallback of every date: each weekday needs one. */
function coverageProblems(s: Schedule): Problem[] {
  const covered = new Set(s.calendar.flatMap((rule) => (rule.kind === "weekdays" ? rule.weekdays : [])));
  const missing = [1, 2, 3, 4, 5, 6, 7]
    .filter((weekday) => !covered.has(weekday))
    .map((w) => WEEKDAY_NAMES[w]);
  if (missing.length === 0) return [];
  return [
    {
      path: ["calendar"],
      message:
        `no weekdays rule covers ${missing.join(", ")}: every day needs a day plan; add ` +
        `{ weekdays: [${missing.join(", ")}], dayPlan: … } or add the days to a weekdays rule`,
    },
  ];
}
