import { existsSync } from "node:fs";
import { basename, extname, resolve } from "node:path";
import type { Issue } from "../core/issues.js";
import {
  type CalendarRule,
  type DayPlanEvent,
  type Schedule,
  type ScheduleAction,
  scheduleProblems,
} from "../core/schedule/calendar.js";
import type { CivilDate } from "../core/time/zone.js";
import { emptyReport } from "./check-report.js";
import { ConfigError, displayPath, formatIssue, type LocatedIssue } from "./errors.js";
import { findCorridorFile } from "./find-corridor.js";
import {
  compileIntersectionPlan,
  type Loaded,
  type LoadedCorridor,
  type LoadedPlan,
  listPlanFiles,
  planFileFor,
  readPlanFile,
} from "./load.js";
import { loadMembers } from "./load-members.js";
import { type CalendarRuleFile, type ScheduleFile, scheduleFileSchema, WEEKDAYS } from "./schedule-schema.js";
import type { PlanFile } from "./schema.js";
import { forbiddenKeyIssues, schemaIssues, validate } from "./validate.js";
import { readYamlFile } from "./yaml-file.js";

/** A schedule file checked against its corridor: its calendar, and every plan it names. */
export interface LoadedSchedule extends Loaded<ScheduleFile> {
  readonly schedule: Schedule;
  /** Each plan the schedule names, by id (`flash` is not a plan). */
  readonly plans: ReadonlyMap<string, PlanFile>;
}

/** The action a schedule writes as `flash`: scheduled flash, not a plan. */
export const FLASH_ACTION = "flash";

/**
 * Loads a schedule file for a corridor, and reports every problem at once, each located in its
 * file: the file's shape (which stops there), then its calendar (precedence overlaps, weekdays without
 * a plan, unknown or unused day plans, two events at one time), its corridor, and each plan it names,
 * which must be a plan file of the corridor that compiles for every one of its intersections.
 */
export function loadSchedule(file: string, corridor: LoadedCorridor): LoadedSchedule {
  const path = resolve(file);
  const yaml = readYamlFile(path);
  const raw = validate(scheduleFileSchema, yaml);
  const issues: Issue[] = [];
  const elsewhere: LocatedIssue[] = [];
  if (raw.corridor !== corridor.raw.id) {
    issues.push({
      path: ["corridor"],
      message: `schedule ${raw.id} is for corridor ${raw.corridor}, not ${corridor.raw.id} (${displayPath(corridor.file)})`,
    });
  }
  const zone = scheduleTimeZone(corridor);
  if (!zone.ok) elsewhere.push(...corridor.yaml.locate([zone.issue]));
  const converted = toSchedule(raw, zone.ok ? zone.timeZone : "UTC");
  issues.push(...converted.issues);
  const plans = checkNamedPlans(raw, corridor, issues, elsewhere);
  const all = withoutRepeats([...yaml.locate(issues), ...elsewhere]);
  if (all.length > 0) throw new ConfigError(all);
  return { file: path, raw, yaml, schedule: converted.schedule, plans };
}

/**
 * The corridor file of a schedule file, searched for as a plan's is (beside it or one directory up,
 * by the schedule's corridor id): for a command given a schedule and no `--corridor`.
 */
export function findScheduleCorridor(file: string): string {
  const yaml = readYamlFile(resolve(file));
  const raw = validate(scheduleFileSchema, yaml);
  return findCorridorFile({ file: yaml.file, raw, yaml }, "schedule");
}

/**
 * A schedule received as data (over the network): its shape and its calendar, in the corridor's time
 * zone. No files: whether its plans exist is the receiver's to check against the plans it holds.
 * Issues name the field path (there are no lines to point at).
 */
export function scheduleFromRaw(
  raw: unknown,
  timeZone: string,
): { readonly schedule: Schedule } | { readonly issues: readonly Issue[] } {
  const forbidden = forbiddenKeyIssues(raw);
  if (forbidden.length > 0) return { issues: forbidden };
  const parsed = scheduleFileSchema.safeParse(raw);
  if (!parsed.success) return { issues: schemaIssues(parsed.error) };
  const { schedule, issues } = toSchedule(parsed.data, timeZone);
  return issues.length > 0 ? { issues } : { schedule };
}

/**
 * The zone a corridor's schedules run in: its `timeZone`, or for a corridor with only a fixed
 * `utcOffset` the IANA zone of that fixed offset (`Etc/GMT-1` is +01:00: POSIX signs are inverted).
 * An offset that is not a whole number of hours has no such zone.
 */
export function scheduleTimeZone(
  corridor: LoadedCorridor,
): { readonly ok: true; readonly timeZone: string } | { readonly ok: false; readonly issue: Issue } {
  const t = corridor.raw.timeReference;
  if (t.timeZone !== undefined) return { ok: true, timeZone: t.timeZone };
  const offset = t.utcOffset ?? "+00:00";
  const [hours, minutes] = offset.slice(1).split(":").map(Number) as [number, number];
  if (hours === 0 && minutes === 0) return { ok: true, timeZone: "UTC" };
  if (minutes === 0 && hours <= (offset.startsWith("-") ? 12 : 14))
    return { ok: true, timeZone: `Etc/GMT${offset.startsWith("-") ? "+" : "-"}${hours}` };
  return {
    ok: false,
    issue: {
      path: ["timeReference", "utcOffset"],
      message: `a schedule runs in its corridor's time zone, and the fixed offset ${offset} is not one: name the zone (timeZone: Asia/Kolkata, for example) instead of utcOffset`,
    },
  };
}

/** The file's data as the core's schedule, with the calendar's problems (their paths into the file). */
function toSchedule(raw: ScheduleFile, timeZone: string): { schedule: Schedule; issues: Issue[] } {
  const inFileOrder: Record<string, readonly DayPlanEvent[]> = {};
  for (const [name, events] of Object.entries(raw.dayPlans))
    inFileOrder[name] = events.map((event) => ({ atMs: atMs(event.at), action: actionOf(event.action) }));
  const calendar = raw.calendar.map(calendarRule);
  // The core indexes a problem's events as it is given them: in the file's order, the file's indexes.
  const issues = scheduleProblems({ id: raw.id, version: raw.version, timeZone, dayPlans: inFileOrder, calendar });
  // Events may be written in any order; the core runs them sorted.
  const dayPlans: Record<string, readonly DayPlanEvent[]> = {};
  for (const [name, events] of Object.entries(inFileOrder)) dayPlans[name] = [...events].sort((a, b) => a.atMs - b.atMs);
  return { schedule: { id: raw.id, version: raw.version, timeZone, dayPlans, calendar }, issues };
}

function atMs(hhmm: string): number {
  const [h, m] = hhmm.split(":").map(Number) as [number, number];
  return (h * 60 + m) * 60_000;
}

function actionOf(action: string): ScheduleAction {
  return action === FLASH_ACTION ? { kind: "flash" } : { kind: "plan", planId: action };
}

function civilDate(text: string): CivilDate {
  const [year, month, day] = text.split("-").map(Number) as [number, number, number];
  return { year, month, day };
}

const ALL_WEEKDAYS = [1, 2, 3, 4, 5, 6, 7];

function calendarRule(rule: CalendarRuleFile): CalendarRule {
  const named = rule.name === undefined ? {} : { name: rule.name };
  const weekdays = rule.weekdays?.map((d) => WEEKDAYS.indexOf(d) + 1);
  if (rule.date !== undefined) return { kind: "date", date: civilDate(rule.date), dayPlan: rule.dayPlan, ...named };
  if (rule.yearly !== undefined) {
    const [month, day] = rule.yearly.split("-").map(Number) as [number, number];
    return { kind: "yearly", month, day, dayPlan: rule.dayPlan, ...named };
  }
  if (rule.from !== undefined && rule.to !== undefined) {
    return {
      kind: "range",
      from: civilDate(rule.from),
      to: civilDate(rule.to),
      weekdays: weekdays ?? ALL_WEEKDAYS,
      dayPlan: rule.dayPlan,
      ...named,
    };
  }
  return { kind: "weekdays", weekdays: weekdays ?? [], dayPlan: rule.dayPlan, ...named };
}

/**
 * Each plan the schedule names, loaded and compiled for every intersection of the corridor, as the
 * gateways will. A plan that does not exist is reported at every action that names it (each is a
 * line to fix); one that does not compile at its first action, naming the intersections, with the
 * plan file's own problems after it.
 */
function checkNamedPlans(
  raw: ScheduleFile,
  corridor: LoadedCorridor,
  issues: Issue[],
  elsewhere: LocatedIssue[],
): Map<string, PlanFile> {
  const uses = new Map<string, (string | number)[][]>();
  for (const [name, events] of Object.entries(raw.dayPlans)) {
    events.forEach((event, i) => {
      if (event.action === FLASH_ACTION) return;
      const at = ["dayPlans", name, i, "action"];
      uses.set(event.action, [...(uses.get(event.action) ?? []), at]);
    });
  }
  const plans = new Map<string, PlanFile>();
  if (uses.size === 0) return plans;
  const report = emptyReport();
  const members = loadMembers(corridor, report);
  elsewhere.push(...report.issues);
  for (const [planId, paths] of uses) {
    const file = planFileFor(corridor, planId);
    if (!existsSync(file)) {
      const message = unknownPlanMessage(corridor, planId);
      issues.push(...paths.map((path) => ({ path, message })));
      continue;
    }
    const plan = planOrIssues(file, elsewhere);
    if (!plan) {
      issues.push({ path: paths[0] as (string | number)[], message: `plan ${planId} (${displayPath(file)}) is not valid` });
      continue;
    }
    const failed: string[] = [];
    for (const [id, member] of members) {
      if (!member) continue;
      try {
        compileIntersectionPlan(member.intersection, plan, corridor);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        failed.push(id);
        elsewhere.push(...error.issues);
      }
    }
    if (failed.length > 0) {
      issues.push({
        path: paths[0] as (string | number)[],
        message: `plan ${planId} is not valid for intersection${failed.length === 1 ? "" : "s"} ${failed.join(", ")} (${displayPath(file)}: its problems follow)`,
      });
    } else {
      plans.set(planId, plan.raw);
    }
  }
  return plans;
}

function planOrIssues(file: string, elsewhere: LocatedIssue[]): LoadedPlan | null {
  try {
    return readPlanFile(file);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    elsewhere.push(...error.issues);
    return null;
  }
}

function unknownPlanMessage(corridor: LoadedCorridor, planId: string): string {
  let known: string[] = [];
  try {
    known = listPlanFiles(corridor).map((f) => basename(f, extname(f)));
  } catch {
    // An unreadable plans directory: the message below says there is no such file, which holds.
  }
  return `plan ${planId} is not a plan of corridor ${corridor.raw.id}: there is no ${planId}.yaml in its plans directory ${displayPath(corridor.plansDirectory)} (${known.length > 0 ? `it has ${known.join(", ")}` : "it has none"}; or write ${FLASH_ACTION} for scheduled flash)`;
}

/** Each issue once: a plan's problems may be found for each intersection that compiles it. */
function withoutRepeats(issues: readonly LocatedIssue[]): LocatedIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = formatIssue(issue);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
