import { scheduleFromRaw } from "../../gateway/config/load-schedule.js";
import { dayPlanFor, type Schedule } from "../../gateway/core/schedule/calendar.js";
import { syncAtOrBefore, type TimeReference } from "../../gateway/core/time/time-reference.js";
import { addDays, type CivilDate, formatDate, localTimeOf, offsetAt } from "../../gateway/core/time/zone.js";
import type { SeededRandom } from "./random.js";

/**
 * What the simulation's schedules are made of: the zones a corridor is run in, the instants a run starts
 * at (near a daylight-saving transition, sometimes), and random schedule files — day plans over the
 * corridor's plans and flash, and calendars of every kind of rule — whose changes fall inside the run.
 */

/** One zone per hemisphere and one more: both transitions of each fall in every year. */
export const SIM_ZONES = ["Europe/Berlin", "Australia/Sydney", "America/Chicago"] as const;

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
const YEAR = 2026;
const WEEKDAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;

const transitionCache = new Map<string, readonly number[]>();

/** The instants in `YEAR` at which the zone's offset changes (found by day, then to the millisecond). */
export function offsetTransitions(zone: string): readonly number[] {
  const known = transitionCache.get(zone);
  if (known) return known;
  const found: number[] = [];
  const start = Date.UTC(YEAR, 0, 1);
  for (let day = 0; day < 366; day++) {
    let lo = start + day * DAY_MS;
    let hi = lo + DAY_MS;
    if (offsetAt(zone, lo) === offsetAt(zone, hi)) continue;
    const before = offsetAt(zone, lo);
    while (hi - lo > 1000) {
      const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
      if (offsetAt(zone, mid) === before) lo = mid;
      else hi = mid;
    }
    found.push(hi);
  }
  transitionCache.set(zone, found);
  return found;
}

/**
 * The true wall time at which a run starts: a few minutes before one of the zone's offset changes or
 * before a sync point on such a day (a third of the runs), or any time of any day of the year.
 */
export function chooseRunStart(r: SeededRandom, zone: string | null, ref: TimeReference): number {
  const transitions = zone === null ? [] : offsetTransitions(zone);
  if (transitions.length > 0 && r.chance(0.35)) {
    const change = r.pick(transitions);
    const pivot = r.chance(0.7) ? change : syncAtOrBefore(ref, change + 6 * 3_600_000);
    return pivot - r.int(0, 6 * MINUTE_MS);
  }
  return Date.UTC(YEAR, 0, 1) + r.int(0, 364) * DAY_MS + r.int(0, DAY_MS - 1);
}

const pad = (n: number) => String(n).padStart(2, "0");
const hhmm = (msOfDay: number) =>
  `${pad(Math.floor(msOfDay / 3_600_000))}:${pad(Math.floor(msOfDay / MINUTE_MS) % 60)}`;

export interface RandomScheduleRequest {
  readonly id: string;
  readonly version: number;
  readonly corridor: string;
  readonly zone: string;
  readonly planIds: readonly string[];
  /** True wall-time window in which most of its changes fall. */
  readonly fromWallMs: number;
  readonly toWallMs: number;
}

type RawEvent = { at: string; action: string };
type RawRule = Record<string, unknown> & { dayPlan: string };

/**
 * A random schedule file (the data of a `kind: schedule` YAML file) valid for the corridor: 1–3 day
 * plans, weekday rules covering the week, and date, yearly or range rules that select the other day
 * plans around the window; a few events at any time of day and a few inside the window (one in a
 * spring-forward gap when the window has one). It goes through production's conversion and checks.
 */
export function randomScheduleFile(
  r: SeededRandom,
  q: RandomScheduleRequest,
): { raw: unknown; schedule: Schedule } {
  const names = Array.from({ length: r.int(1, 3) }, (_, i) => `dp${i + 1}`);
  const action = () => (r.chance(0.08) ? "flash" : r.pick(q.planIds));
  const dayPlans: Record<string, RawEvent[]> = {};
  for (const name of names) {
    const events: RawEvent[] = [];
    for (let i = r.int(1, 2); i > 0; i--) addEvent(events, hhmm(r.int(0, 1439) * MINUTE_MS), action());
    dayPlans[name] = events;
  }
  const day = localTimeOf(q.zone, q.fromWallMs);
  const calendar = randomCalendar(r, names, r.chance(0.7) ? day : addDays(day, r.pick([-1, 1])));
  const file = { kind: "schedule", id: q.id, version: q.version, corridor: q.corridor, dayPlans, calendar };
  const provisional = convert(file, q.zone);
  const local: { date: CivilDate; msOfDay: number }[] = [];
  for (let i = r.int(1, 3); i > 0; i--) {
    const at = localTimeOf(q.zone, r.int(q.fromWallMs, q.toWallMs));
    local.push({ date: at, msOfDay: at.msOfDay });
  }
  const gap = springForwardIn(q.zone, q.fromWallMs, q.toWallMs);
  if (gap && r.chance(0.6)) local.push({ date: gap.date, msOfDay: r.int(gap.fromMs, gap.toMs - 1) });
  for (const { date, msOfDay } of local)
    addEvent(dayPlans[dayPlanFor(provisional, date).dayPlan] as RawEvent[], hhmm(msOfDay), action());
  // A change every week (the first day plan is a weekly one). Without one for a year, a manual change
  // "until the next scheduled change" never ends, and the gateway looks 400 days ahead for that change
  // at every tick: seconds of CPU per simulated run (reported; left out of the random schedules).
  const weekly = dayPlans.dp1 as RawEvent[];
  const first = weekly[0] as RawEvent;
  if (weekly.every((e) => e.action === first.action)) {
    const other = r.pick([...q.planIds, "flash"].filter((a) => a !== first.action));
    const free = (minute: number) => !weekly.some((e) => e.at === hhmm(minute * MINUTE_MS));
    let minute = r.int(0, 1439);
    while (!free(minute)) minute = (minute + 1) % 1440;
    addEvent(weekly, hhmm(minute * MINUTE_MS), other);
  }
  return { raw: file, schedule: convert(file, q.zone) };
}

function addEvent(events: RawEvent[], at: string, action: string): void {
  if (!events.some((e) => e.at === at)) events.push({ at, action });
}

function convert(file: unknown, zone: string): Schedule {
  const converted = scheduleFromRaw(file, zone);
  if ("issues" in converted)
    throw new Error(
      `a generated schedule is invalid: ${JSON.stringify(converted.issues)}\n${JSON.stringify(file)}`,
    );
  return converted.schedule;
}

/**
 * Weekday rules over one or two day plans (every weekday once), and one rule of a higher precedence
 * (date, yearly, range) for each other day plan, on or around `day`.
 */
function randomCalendar(r: SeededRandom, names: readonly string[], day: CivilDate): RawRule[] {
  const weekly = names.slice(0, r.int(1, Math.min(2, names.length)));
  // Each weekday once; each weekly day plan at least one.
  const days = shuffled(r, WEEKDAY_NAMES).map((d, i) => ({
    d,
    k: i < weekly.length ? i : r.int(0, weekly.length - 1),
  }));
  const rules: RawRule[] = weekly.map((name, k) => ({
    weekdays: WEEKDAY_NAMES.filter((d) => days.some((x) => x.d === d && x.k === k)),
    dayPlan: name,
  }));
  const kinds = shuffled(r, ["date", "yearly", "range"] as const);
  names.slice(weekly.length).forEach((name, i) => {
    const kind = kinds[i];
    if (kind === "date") rules.push({ date: formatDate(day), dayPlan: name, name: "one-off" });
    else if (kind === "yearly")
      rules.push({ yearly: formatDate(day).slice(5), dayPlan: name, name: "holiday" });
    else {
      const rule: RawRule = {
        from: formatDate(addDays(day, -r.int(0, 3))),
        to: formatDate(addDays(day, r.int(0, 3))),
        dayPlan: name,
      };
      if (r.chance(0.5))
        rule.weekdays = WEEKDAY_NAMES.filter((_, w) => w + 1 === weekdayOf(day) || r.chance(0.4));
      rules.push(rule);
    }
  });
  return rules;
}

function shuffled<T>(r: SeededRandom, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = r.int(0, i);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

function weekdayOf(date: CivilDate): number {
  return ((new Date(Date.UTC(date.year, date.month - 1, date.day)).getUTCDay() + 6) % 7) + 1;
}

/** A spring-forward gap between the two instants: its local date and the local times it skips. */
function springForwardIn(
  zone: string,
  fromWallMs: number,
  toWallMs: number,
): { date: CivilDate; fromMs: number; toMs: number } | null {
  for (const t of offsetTransitions(zone)) {
    if (t < fromWallMs || t > toWallMs) continue;
    const before = offsetAt(zone, t - 1000);
    const after = offsetAt(zone, t);
    if (after <= before) continue;
    const start = localTimeOf(zone, t - 1000);
    const fromMs = start.msOfDay + 1000;
    return { date: start, fromMs, toMs: Math.min(fromMs + (after - before), DAY_MS) };
  }
  return null;
}
