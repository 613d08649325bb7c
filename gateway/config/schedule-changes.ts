import {
  actionLabel,
  changeInForce,
  changesBetween,
  nextChange,
  type Schedule,
  type ScheduledChange,
} from "../core/schedule/calendar.js";
import { addDays, type CivilDate, formatDate, instantOfLocal, localTimeOf, offsetAt } from "../core/time/zone.js";
import { MAX_EVENTS_PER_DAY_PLAN, WEEKDAYS } from "./schedule-schema.js";

/**
 * A schedule's changes as the operator reads them (`config check`, `schedule show`): the local date
 * and time, the weekday, the UTC instant, the day plan and the action, and whether daylight-saving
 * time moved the change.
 */
export interface ChangeRow {
  /** The local date whose day plan holds the event, YYYY-MM-DD. */
  readonly date: string;
  /** That date's weekday: mon … sun. */
  readonly weekday: string;
  /** The event's time in its day plan, HH:MM. */
  readonly at: string;
  /** The local time the change happens at, HH:MM: `at`, unless a spring-forward gap moved it. */
  readonly local: string;
  /** The instant, ISO 8601 UTC. */
  readonly utc: string;
  readonly dayPlan: string;
  /** A plan id or `flash`. */
  readonly action: string;
  /**
   * `gap`: `at` does not exist that day (clocks spring forward over it) and the change happens when the
   * gap ends; `fold`: `at` happens twice (clocks fall back) and the change happens at the first.
   */
  readonly dst?: "gap" | "fold";
}

/** Most days `schedule show` lists at once: a year, with a few days to spare. */
export const MAX_SHOW_DAYS = 400;

const hhmm = (ms: number) => {
  const minutes = Math.floor(ms / 60_000);
  return `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
};

export function changeRow(s: Schedule, change: ScheduledChange): ChangeRow {
  const local = localTimeOf(s.timeZone, change.atWallMs);
  const { year, month, day } = change.date;
  const weekday = WEEKDAYS[(new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 6) % 7];
  const moved = local.msOfDay !== change.atMs || formatDate(local) !== formatDate(change.date);
  const dst = moved ? "gap" : inFold(s.timeZone, change.atWallMs) ? "fold" : undefined;
  return {
    date: formatDate(change.date),
    weekday: weekday ?? "",
    at: hhmm(change.atMs),
    local: hhmm(local.msOfDay),
    utc: new Date(change.atWallMs).toISOString(),
    dayPlan: change.dayPlan,
    action: actionLabel(change.action),
    ...(dst === undefined ? {} : { dst }),
  };
}

/** Does the local time of this instant happen once more, later, the same day (a fall-back fold)? */
function inFold(zone: string, wallMs: number): boolean {
  const localMs = wallMs + offsetAt(zone, wallMs);
  for (const offset of [offsetAt(zone, wallMs - 86_400_000), offsetAt(zone, wallMs + 86_400_000)]) {
    const other = localMs - offset;
    if (other !== wallMs && other + offsetAt(zone, other) === localMs) return true;
  }
  return false;
}

/** What daylight-saving time did to a change, for a person; "" if nothing. */
export function dstNote(row: ChangeRow): string {
  if (row.dst === "gap") return `${row.at} does not exist that day (clocks spring forward): at the gap's end, ${row.local}`;
  if (row.dst === "fold") return `${row.at} happens twice that day (clocks fall back): at the first`;
  return "";
}

/** One line: `Mon 2026-05-04 06:30 (04:30 UTC) am-peak, day plan weekday`. */
export function describeChange(row: ChangeRow): string {
  const weekday = row.weekday.charAt(0).toUpperCase() + row.weekday.slice(1);
  const note = dstNote(row);
  return `${weekday} ${row.date} ${row.local} (${row.utc.slice(0, 10)} ${row.utc.slice(11, 16)} UTC) ${row.action}, day plan ${row.dayPlan}${note ? ` — ${note}` : ""}`;
}

/** The next `count` changes after `wallMs`, each at most a year ahead of the one before. */
export function nextChanges(s: Schedule, wallMs: number, count: number): ScheduledChange[] {
  const changes: ScheduledChange[] = [];
  for (let at = wallMs; changes.length < count; ) {
    const next = nextChange(s, at);
    if (!next) break;
    changes.push(next);
    at = next.atWallMs;
  }
  return changes;
}

/** The action in force as a local date begins, and the changes of `days` local days from it. */
export function changesOnDays(
  s: Schedule,
  from: CivilDate,
  days: number,
): { readonly inForce: ScheduledChange; readonly changes: readonly ScheduledChange[] } {
  const startMs = instantOfLocal(s.timeZone, from, 0);
  const endMs = instantOfLocal(s.timeZone, addDays(from, days), 0);
  // An event at 00:00 of the first day is a change of that day, not the one in force before it.
  const before = startMs - 1;
  return {
    inForce: changeInForce(s, before),
    changes: changesBetween(s, before, endMs - 1, days * MAX_EVENTS_PER_DAY_PLAN + 1),
  };
}
