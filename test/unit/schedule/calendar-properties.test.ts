import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type CalendarRule,
  changeInForce,
  changesBetween,
  type DayPlanEvent,
  dayPlanFor,
  sameAction,
  type Schedule,
  type ScheduleAction,
  type ScheduledChange,
  scheduleProblems,
} from "../../../gateway/core/schedule/calendar.js";
import {
  addDays,
  type CivilDate,
  instantOfLocal,
  localTimeOf,
  offsetAt,
} from "../../../gateway/core/time/zone.js";

/**
 * The calendar's rules for all schedules (issue 15): every instant of a year maps to one event, the
 * changes of a year come in order with none skipped or doubled across daylight-saving time, the action
 * holds between changes, and an event whose local time exists happens at that local time.
 *
 * Schedules are random: day plans of random HH:MM events (drawn often near 00:00 and 01:00–03:30, where
 * the zones change offset), calendars of all four kinds without equal-precedence overlaps, in zones of
 * both hemispheres, with changes at midnight (Santiago), at 02:00 or 03:00, or none (UTC, Kolkata).
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const ZONES = [
  "Europe/Berlin",
  "Australia/Sydney",
  "America/Chicago",
  "UTC",
  "America/Santiago",
  "Asia/Kolkata",
] as const;
const YEARS = [2026, 2027, 2028] as const;
const ALL = [1, 2, 3, 4, 5, 6, 7];

const actionArb: fc.Arbitrary<ScheduleAction> = fc.constantFrom<ScheduleAction>(
  { kind: "plan", planId: "a" },
  { kind: "plan", planId: "b" },
  { kind: "plan", planId: "c" },
  { kind: "flash" },
);

/** Minutes of the day, often where offsets change: around midnight and 01:00–03:30. */
const minuteArb = fc.oneof(
  fc.integer({ min: 0, max: 1439 }),
  fc.integer({ min: 60, max: 210 }),
  fc.constantFrom(0, 30, 120, 150, 179, 180, 1380, 1410, 1439),
);

// No chain: a chained arbitrary that depends on a shrunk value cannot shrink its own values again.
const dayPlanArb: fc.Arbitrary<DayPlanEvent[]> = fc
  .uniqueArray(fc.tuple(minuteArb, actionArb), { minLength: 1, maxLength: 8, selector: ([minute]) => minute })
  .map((events) =>
    events.sort(([a], [b]) => a - b).map(([minute, action]) => ({ atMs: minute * MINUTE, action })),
  );

const dateOf = (year: number, dayOfYear: number): CivilDate => addDays({ year, month: 1, day: 1 }, dayOfYear);

const planIndexArb = fc.integer({ min: 0, max: 3 });
const weekdaySetArb = fc.oneof(
  fc.constant(ALL),
  fc.uniqueArray(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 7 }),
);

/** A calendar for the years around `year`, as a function of the year: no two rules of one kind pick the same day. */
const calendarArb: fc.Arbitrary<(year: number) => CalendarRule[]> = fc
  .record({
    // Each weekday in one of up to three weekdays rules.
    groups: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 7, maxLength: 7 }),
    groupPlans: fc.array(planIndexArb, { minLength: 3, maxLength: 3 }),
    // Disjoint ranges: consecutive pairs of distinct sorted days, from the year before to the year after.
    rangeEnds: fc.uniqueArray(fc.tuple(fc.integer({ min: -60, max: 420 }), weekdaySetArb, planIndexArb), {
      maxLength: 6,
      selector: ([day]) => day,
    }),
    // Days of a leap year: 59 is 02-29.
    yearly: fc.uniqueArray(
      fc.tuple(fc.oneof(fc.constant(59), fc.integer({ min: 0, max: 365 })), planIndexArb),
      {
        maxLength: 4,
        selector: ([day]) => day,
      },
    ),
    dates: fc.uniqueArray(fc.tuple(fc.integer({ min: -10, max: 375 }), planIndexArb), {
      maxLength: 4,
      selector: ([day]) => day,
    }),
    order: fc.array(fc.integer(), { minLength: 20, maxLength: 20 }),
  })
  .map(({ groups, groupPlans, rangeEnds, yearly, dates, order }) => (year: number) => {
    const rules: CalendarRule[] = [];
    for (let g = 0; g < 3; g++) {
      const weekdays = ALL.filter((w) => groups[w - 1] === g);
      if (weekdays.length > 0) rules.push({ kind: "weekdays", weekdays, dayPlan: `p${groupPlans[g]}` });
    }
    const ends = [...rangeEnds].sort(([a], [b]) => a - b);
    for (let i = 0; i + 1 < ends.length; i += 2) {
      const [[from, weekdays, plan], [to]] = [ends[i], ends[i + 1]] as [
        (typeof ends)[number],
        (typeof ends)[number],
      ];
      rules.push({
        kind: "range",
        from: dateOf(year, from),
        to: dateOf(year, to),
        weekdays,
        dayPlan: `p${plan}`,
      });
    }
    for (const [day, plan] of yearly) {
      const { month, day: dayOfMonth } = dateOf(2028, day);
      rules.push({ kind: "yearly", month, day: dayOfMonth, dayPlan: `p${plan}` });
    }
    for (const [day, plan] of dates)
      rules.push({ kind: "date", date: dateOf(year, day), dayPlan: `p${plan}` });
    // The file's order does not matter: shuffle it.
    return rules
      .map((rule, i) => ({ rule, key: order[i % order.length] as number }))
      .sort((a, b) => a.key - b.key)
      .map(({ rule }) => rule);
  });

interface Case {
  readonly s: Schedule;
  readonly year: number;
}

/** A schedule whose day plans are exactly those its calendar names. */
const scheduleArb: fc.Arbitrary<Case> = fc
  .record({
    zone: fc.constantFrom(...ZONES),
    year: fc.constantFrom(...YEARS),
    calendar: calendarArb,
    plans: fc.array(dayPlanArb, { minLength: 4, maxLength: 4 }),
  })
  .map(({ zone, year, calendar: calendarOf, plans }) => {
    const calendar = calendarOf(year);
    const used = new Set(calendar.map((rule) => rule.dayPlan));
    const dayPlans = Object.fromEntries(
      plans.map((events, i) => [`p${i}`, events] as const).filter(([name]) => used.has(name)),
    );
    return { s: { id: "random", version: 1, timeZone: zone, dayPlans, calendar }, year };
  });

/** Every instant in the zone where its offset changes, between the two instants (to the ms). */
function offsetChanges(zone: string, fromMs: number, toMs: number): number[] {
  const changes: number[] = [];
  for (let t = fromMs; t < toMs; t += 6 * HOUR) {
    if (offsetAt(zone, t) === offsetAt(zone, t + 6 * HOUR)) continue;
    let [lo, hi] = [t, t + 6 * HOUR];
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (offsetAt(zone, mid) === offsetAt(zone, t)) lo = mid;
      else hi = mid;
    }
    changes.push(hi);
  }
  return changes;
}
const changesCache = new Map<string, number[]>();
function offsetChangesOfYear(zone: string, year: number): number[] {
  const key = `${zone} ${year}`;
  let found = changesCache.get(key);
  if (found === undefined) {
    found = offsetChanges(zone, Date.UTC(year, 0, 1) - DAY, Date.UTC(year + 1, 0, 1) + DAY);
    changesCache.set(key, found);
  }
  return found;
}

/** An instant of a case's year: anywhere in it, or within a day of an offset change (often within minutes). */
type InstantSpec = { readonly uniformMs: number } | { readonly change: number; readonly deltaMs: number };
const instantSpecArb: fc.Arbitrary<InstantSpec> = fc.oneof(
  fc.record({ uniformMs: fc.integer({ min: 0, max: 365 * DAY }) }),
  fc.record({
    change: fc.nat(),
    deltaMs: fc.oneof(
      fc.integer({ min: -26 * HOUR, max: 26 * HOUR }),
      fc.integer({ min: -2 * MINUTE, max: 2 * MINUTE }),
    ),
  }),
);
function instantOf(c: Case, spec: InstantSpec): number {
  const changes = offsetChangesOfYear(c.s.timeZone, c.year);
  if ("uniformMs" in spec || changes.length === 0)
    return Date.UTC(c.year, 0, 1) + ("uniformMs" in spec ? spec.uniformMs : spec.deltaMs + 180 * DAY);
  return (changes[spec.change % changes.length] as number) + spec.deltaMs;
}

/**
 * The event in force at wallMs by brute force: every event of the days around, each at
 * instantOfLocal's instant; the latest at or before wallMs, of those the last in local order.
 */
function inForceByBruteForce(s: Schedule, wallMs: number): ScheduledChange {
  const today = localTimeOf(s.timeZone, wallMs);
  let best: ScheduledChange | undefined;
  for (let k = -2; k <= 1; k++) {
    const date = addDays(today, k);
    const { dayPlan } = dayPlanFor(s, date);
    for (const event of s.dayPlans[dayPlan] ?? []) {
      const atWallMs = instantOfLocal(s.timeZone, date, event.atMs);
      if (atWallMs <= wallMs && (best === undefined || atWallMs >= best.atWallMs))
        best = { atWallMs, date, atMs: event.atMs, dayPlan, action: event.action };
    }
  }
  if (best === undefined) throw new Error("no event in four days");
  return best;
}

/** Every change of the span, asked for in chunks of random lengths and counts. */
function changesInChunks(
  s: Schedule,
  fromMs: number,
  toMs: number,
  chunks: readonly [number, number][],
): ScheduledChange[] {
  const all: ScheduledChange[] = [];
  let cursor = fromMs;
  for (let i = 0; cursor < toMs; i++) {
    const [days, max] = chunks[i % chunks.length] as [number, number];
    const end = Math.min(toMs, cursor + days * DAY + 1);
    const batch = changesBetween(s, cursor, end, max);
    all.push(...batch);
    cursor = batch.length === max ? (batch[batch.length - 1] as ScheduledChange).atWallMs : end;
  }
  return all;
}

describe("the calendar, for random schedules in zones of both hemispheres", () => {
  it("generates schedules without problems (the generator is honest)", () => {
    fc.assert(
      fc.property(scheduleArb, ({ s }) => {
        expect(scheduleProblems(s)).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });

  it("(a) maps every instant to exactly one event: the latest at or before it", () => {
    fc.assert(
      fc.property(scheduleArb, fc.array(instantSpecArb, { minLength: 1, maxLength: 20 }), (c, specs) => {
        const { s } = c;
        for (const wallMs of specs.map((spec) => instantOf(c, spec))) {
          const change = changeInForce(s, wallMs);
          expect(changeInForce(s, wallMs)).toEqual(change);
          expect(change.atWallMs).toBeLessThanOrEqual(wallMs);
          expect(change).toEqual(inForceByBruteForce(s, wallMs));
        }
      }),
      { numRuns: 150 },
    );
  });

  it("(b) walks a year: changes strictly in order, each one the action just after it and not just before", () => {
    const chunkArb = fc.array(fc.tuple(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 50 })), {
      minLength: 1,
      maxLength: 4,
    });
    fc.assert(
      fc.property(scheduleArb, chunkArb, ({ s, year }, chunks) => {
        const start = Date.UTC(year, 0, 1) - DAY;
        const end = Date.UTC(year + 1, 0, 1) + DAY;
        const changes = changesInChunks(s, start, end, chunks);
        // Chunked or at once, the same changes.
        expect(changes).toEqual(changesBetween(s, start, end, 100_000));
        let previous = changeInForce(s, start);
        for (const change of changes) {
          expect(change.atWallMs).toBeGreaterThan(previous.atWallMs);
          expect(sameAction(change.action, previous.action)).toBe(false);
          expect(changeInForce(s, change.atWallMs - 1).action).toEqual(previous.action);
          expect(changeInForce(s, change.atWallMs)).toEqual(change);
          previous = change;
        }
        expect(changeInForce(s, end).action).toEqual(previous.action);
      }),
      { numRuns: 20 },
    );
  });

  it("(c) holds the action constant between consecutive changes", () => {
    fc.assert(
      fc.property(
        scheduleArb,
        instantSpecArb,
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 6 }),
        (c, spec, fractions) => {
          const { s } = c;
          const from = instantOf(c, spec);
          const to = from + 3 * DAY;
          const bounds = [
            from,
            ...changesBetween(s, from, to, 1000).map((change) => change.atWallMs),
            to + 1,
          ];
          for (let i = 0; i + 1 < bounds.length; i++) {
            const [lo, hi] = [bounds[i] as number, bounds[i + 1] as number];
            const action = changeInForce(s, lo).action;
            for (const f of fractions)
              expect(changeInForce(s, lo + Math.floor(f * (hi - lo - 1))).action).toEqual(action);
            expect(changeInForce(s, hi - 1).action).toEqual(action);
          }
        },
      ),
      { numRuns: 80 },
    );
  });

  it("(d) on the DST days of Berlin and Sydney, an event whose local time exists once happens at that local time", () => {
    const dstDays: [string, CivilDate][] = [
      ["Europe/Berlin", { year: 2026, month: 3, day: 29 }],
      ["Europe/Berlin", { year: 2026, month: 10, day: 25 }],
      ["Europe/Berlin", { year: 2027, month: 3, day: 28 }],
      ["Europe/Berlin", { year: 2027, month: 10, day: 31 }],
      ["Australia/Sydney", { year: 2026, month: 4, day: 5 }],
      ["Australia/Sydney", { year: 2026, month: 10, day: 4 }],
      ["Australia/Sydney", { year: 2027, month: 4, day: 4 }],
      ["Australia/Sydney", { year: 2027, month: 10, day: 3 }],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...dstDays), dayPlanArb, dayPlanArb, ([zone, day], dst, rest) => {
        const s: Schedule = {
          id: "dst",
          version: 1,
          timeZone: zone,
          dayPlans: { dst, rest },
          calendar: [
            { kind: "weekdays", weekdays: ALL, dayPlan: "rest" },
            { kind: "date", date: day, dayPlan: "dst" },
          ],
        };
        for (const event of dst) {
          const times = occurrences(zone, day, event.atMs);
          if (times.length === 0) continue;
          // Once: at that time; twice (a fold): at the first.
          const at = times[0] as number;
          if (times.length === 1)
            expect(localTimeOf(zone, at)).toMatchObject({ ...day, msOfDay: event.atMs });
          expect(changeInForce(s, at)).toEqual({
            atWallMs: at,
            date: day,
            atMs: event.atMs,
            dayPlan: "dst",
            action: event.action,
          });
          expect(
            changeInForce(s, at - 1).atMs === event.atMs && changeInForce(s, at - 1).dayPlan === "dst",
          ).toBe(false);
        }
      }),
      { numRuns: 150 },
    );
  });

  it("finds two ranges overlapping exactly when a day is in both, on a weekday of both", () => {
    const rangeArb = fc
      .tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 12 }), weekdaySetArb)
      .map(([start, length, weekdays]): CalendarRule & { kind: "range" } => ({
        kind: "range",
        from: dateOf(2026, start),
        to: dateOf(2026, start + length),
        weekdays,
        dayPlan: "d",
      }));
    fc.assert(
      fc.property(rangeArb, rangeArb, (r1, r2) => {
        const s: Schedule = {
          id: "ranges",
          version: 1,
          timeZone: "UTC",
          dayPlans: { d: [{ atMs: 0, action: { kind: "flash" } }] },
          calendar: [{ kind: "weekdays", weekdays: ALL, dayPlan: "d" }, r1, r2],
        };
        let shared = false;
        for (let d = 0; d <= 60; d++) {
          const date = dateOf(2026, d);
          const matches = (r: typeof r1) => {
            const key = (x: CivilDate) => x.year * 10_000 + x.month * 100 + x.day;
            const weekday = localTimeOf("UTC", Date.UTC(date.year, date.month - 1, date.day)).weekday;
            return key(r.from) <= key(date) && key(date) <= key(r.to) && r.weekdays.includes(weekday);
          };
          if (matches(r1) && matches(r2)) shared = true;
        }
        expect(scheduleProblems(s).map((p) => p.path)).toEqual(shared ? [["calendar", 2]] : []);
      }),
      { numRuns: 300 },
    );
  });
});

/** The instants whose local date and time in the zone are these: none (a gap), one, or two (a fold). */
function occurrences(zone: string, date: CivilDate, msOfDay: number): number[] {
  const nominal = Date.UTC(date.year, date.month - 1, date.day) + msOfDay;
  const offsets = new Set([-DAY, 0, DAY].map((k) => offsetAt(zone, nominal + k)));
  return [...offsets]
    .map((offset) => nominal - offset)
    .filter((t) => offsetAt(zone, t) === nominal - t)
    .sort((a, b) => a - b);
}
