import { describe, expect, it } from "vitest";
import { InvariantViolation } from "../../../gateway/core/invariant.js";
import {
  actionLabel,
  type CalendarRule,
  changeInForce,
  changesBetween,
  dayPlanFor,
  nextChange,
  sameAction,
  type Schedule,
  type ScheduleAction,
  type ScheduledChange,
  scheduleProblems,
} from "../../../gateway/core/schedule/calendar.js";
import { localTimeOf } from "../../../gateway/core/time/zone.js";

const HOUR = 3_600_000;
const MINUTE = 60_000;
const BERLIN = "Europe/Berlin";
const SYDNEY = "Australia/Sydney";
const utc = (y: number, mo: number, d: number, h = 0, mi = 0) => Date.UTC(y, mo - 1, d, h, mi);
const date = (year: number, month: number, day: number) => ({ year, month, day });
const hhmm = (text: string) => {
  const [h, m] = text.split(":").map(Number) as [number, number];
  return h * HOUR + m * MINUTE;
};
const actionOf = (label: string): ScheduleAction =>
  label === "flash" ? { kind: "flash" } : { kind: "plan", planId: label };
const ALL = [1, 2, 3, 4, 5, 6, 7];
const WEEKDAYS = [1, 2, 3, 4, 5];
const WEEKEND = [6, 7];

/** A schedule from day plans written as `"HH:MM action"` lines (sorted here, as the loader does). */
function schedule(timeZone: string, plans: Record<string, string[]>, calendar: CalendarRule[]): Schedule {
  const dayPlans = Object.fromEntries(
    Object.entries(plans).map(([name, lines]) => [
      name,
      lines
        .map((line) => {
          const [at, action] = line.split(" ") as [string, string];
          return { atMs: hhmm(at), action: actionOf(action) };
        })
        .sort((a, b) => a.atMs - b.atMs),
    ]),
  );
  return { id: "test", version: 1, timeZone, dayPlans, calendar };
}

/** `2026-03-29 02:45 c`: where a change came from and what it does. */
const describeChange = (c: ScheduledChange) =>
  `${c.date.year}-${String(c.date.month).padStart(2, "0")}-${String(c.date.day).padStart(2, "0")} ` +
  `${String(Math.floor(c.atMs / HOUR)).padStart(2, "0")}:${String((c.atMs % HOUR) / MINUTE).padStart(2, "0")} ` +
  actionLabel(c.action);

describe("the day plan of a date", () => {
  const calendar: CalendarRule[] = [
    { kind: "weekdays", weekdays: WEEKDAYS, dayPlan: "weekday" },
    { kind: "weekdays", weekdays: WEEKEND, dayPlan: "weekend" },
    { kind: "range", from: date(2026, 7, 20), to: date(2026, 8, 28), weekdays: WEEKDAYS, dayPlan: "summer" },
    { kind: "yearly", month: 12, day: 25, dayPlan: "holiday", name: "Christmas Day" },
    { kind: "yearly", month: 8, day: 3, dayPlan: "holiday", name: "a summer holiday" },
    { kind: "yearly", month: 7, day: 22, dayPlan: "holiday" },
    { kind: "date", date: date(2026, 12, 25), dayPlan: "weekend", name: "Christmas 2026" },
    { kind: "date", date: date(2026, 7, 22), dayPlan: "special" },
  ];
  const plans = ["weekday", "weekend", "summer", "holiday", "special"];
  const s = schedule(BERLIN, Object.fromEntries(plans.map((p) => [p, ["06:00 x"]])), calendar);

  it("follows date > yearly > range > weekdays, whatever the rules' order in the file", () => {
    const expected: [ReturnType<typeof date>, string][] = [
      [date(2026, 7, 21), "summer"], // a Tuesday in the range
      [date(2026, 7, 25), "weekend"], // a Saturday in the range: not one of its weekdays
      [date(2026, 7, 22), "special"], // date over yearly 07-22 and the range
      [date(2027, 7, 22), "holiday"], // yearly 07-22 in a year without the range
      [date(2026, 8, 3), "holiday"], // yearly over range
      [date(2026, 12, 25), "weekend"], // date over yearly
      [date(2027, 12, 25), "holiday"],
      [date(2026, 12, 24), "weekday"], // a Thursday
      [date(2026, 12, 27), "weekend"], // a Sunday
    ];
    for (const order of [calendar, [...calendar].reverse()]) {
      const reordered = { ...s, calendar: order };
      for (const [day, dayPlan] of expected)
        expect(dayPlanFor(reordered, day).dayPlan, JSON.stringify(day)).toBe(dayPlan);
    }
    expect(dayPlanFor(s, date(2026, 12, 25)).rule).toBe(calendar[6]);
    expect(dayPlanFor(s, date(2027, 12, 25)).rule.name).toBe("Christmas Day");
  });

  it("applies a range from its first to its last day, on its weekdays only", () => {
    expect(dayPlanFor(s, date(2026, 7, 19)).dayPlan).toBe("weekend"); // the Sunday before
    expect(dayPlanFor(s, date(2026, 7, 20)).dayPlan).toBe("summer"); // first day, a Monday
    expect(dayPlanFor(s, date(2026, 8, 28)).dayPlan).toBe("summer"); // last day, a Friday
    expect(dayPlanFor(s, date(2026, 8, 29)).dayPlan).toBe("weekend");
    expect(dayPlanFor(s, date(2026, 8, 31)).dayPlan).toBe("weekday"); // the Monday after
    expect(dayPlanFor(s, date(2027, 7, 21)).dayPlan).toBe("weekday"); // same day, next year
  });

  it("holds a yearly 02-29 on leap days only", () => {
    const leap = schedule(BERLIN, { day: ["06:00 x"], leap: ["06:00 y"] }, [
      { kind: "weekdays", weekdays: ALL, dayPlan: "day" },
      { kind: "yearly", month: 2, day: 29, dayPlan: "leap" },
    ]);
    expect(dayPlanFor(leap, date(2028, 2, 29)).dayPlan).toBe("leap");
    expect(dayPlanFor(leap, date(2000, 2, 29)).dayPlan).toBe("leap");
    for (const day of [
      date(2027, 2, 28),
      date(2027, 3, 1),
      date(2028, 2, 28),
      date(2028, 3, 1),
      date(2100, 3, 1),
    ])
      expect(dayPlanFor(leap, day).dayPlan).toBe("day");
    expect(scheduleProblems(leap)).toEqual([]);
  });

  it("is refused, naming the date, for a schedule with a day no rule covers", () => {
    const gap = schedule(BERLIN, { weekday: ["06:00 x"] }, [
      { kind: "weekdays", weekdays: WEEKDAYS, dayPlan: "weekday" },
    ]);
    expect(() => dayPlanFor(gap, date(2026, 7, 25))).toThrow(InvariantViolation);
    expect(() => dayPlanFor(gap, date(2026, 7, 25))).toThrow(/2026-07-25 \(sat\)/);
  });
});

describe("the event in force", () => {
  const s = schedule(
    BERLIN,
    {
      weekday: ["06:00 am-peak", "10:00 off-peak", "22:00 flash"],
      weekend: ["08:00 off-peak", "23:00 flash"],
    },
    [
      { kind: "weekdays", weekdays: WEEKDAYS, dayPlan: "weekday" },
      { kind: "weekdays", weekdays: WEEKEND, dayPlan: "weekend" },
    ],
  );

  it("is the day's latest event at or before the instant", () => {
    // Tuesday 2026-07-21, CEST (+02:00).
    expect(changeInForce(s, utc(2026, 7, 21, 4))).toEqual({
      atWallMs: utc(2026, 7, 21, 4),
      date: date(2026, 7, 21),
      atMs: 6 * HOUR,
      dayPlan: "weekday",
      action: actionOf("am-peak"),
    });
    expect(changeInForce(s, utc(2026, 7, 21, 7, 59)).atWallMs).toBe(utc(2026, 7, 21, 4));
    expect(describeChange(changeInForce(s, utc(2026, 7, 21, 8)))).toBe("2026-07-21 10:00 off-peak");
    expect(describeChange(changeInForce(s, utc(2026, 7, 21, 21, 59)))).toBe("2026-07-21 22:00 flash");
  });

  it("before the day's first event is the previous day's last event, even of another day plan", () => {
    const early = changeInForce(s, utc(2026, 7, 21, 4) - 1); // 05:59:59.999 Tuesday
    expect(early).toEqual({
      atWallMs: utc(2026, 7, 20, 20),
      date: date(2026, 7, 20),
      atMs: 22 * HOUR,
      dayPlan: "weekday",
      action: actionOf("flash"),
    });
    // Monday 05:00 follows Sunday's 23:00, a weekend event.
    expect(describeChange(changeInForce(s, utc(2026, 7, 20, 3)))).toBe("2026-07-19 23:00 flash");
    expect(changeInForce(s, utc(2026, 7, 20, 3)).dayPlan).toBe("weekend");
    // Local midnight exactly.
    expect(describeChange(changeInForce(s, utc(2026, 7, 20, 22)))).toBe("2026-07-20 22:00 flash");
  });

  it("reads local time: the same UTC instant is another event in another zone", () => {
    const sydney = { ...s, timeZone: SYDNEY };
    // 2026-07-21 04:00 UTC is 14:00 AEST on Tuesday.
    expect(describeChange(changeInForce(sydney, utc(2026, 7, 21, 4)))).toBe("2026-07-21 10:00 off-peak");
    expect(changeInForce(sydney, utc(2026, 7, 21, 4)).atWallMs).toBe(utc(2026, 7, 21, 0));
  });
});

describe("events across a spring-forward gap", () => {
  // Berlin 2026-03-29 and Sydney 2026-10-04 are Sundays that skip 02:00–03:00.
  const plans = {
    day: ["01:30 a", "02:15 b", "02:45 c", "04:00 d"],
    other: ["08:00 o"],
  };
  const calendar: CalendarRule[] = [
    { kind: "weekdays", weekdays: ALL, dayPlan: "other" },
    { kind: "date", date: date(2026, 3, 29), dayPlan: "day" },
    { kind: "date", date: date(2026, 10, 4), dayPlan: "day" },
  ];

  for (const [zone, day, gapEnd] of [
    [BERLIN, date(2026, 3, 29), utc(2026, 3, 29, 1)],
    [SYDNEY, date(2026, 10, 4), utc(2026, 10, 3, 16)],
  ] as const) {
    const s = schedule(zone, plans, calendar);

    it(`${zone}: two events in the gap both fall at its end, the last in force, the first never`, () => {
      expect(describeChange(changeInForce(s, gapEnd - 1))).toBe(
        `${day.year}-${String(day.month).padStart(2, "0")}-${String(day.day).padStart(2, "0")} 01:30 a`,
      );
      expect(changeInForce(s, gapEnd)).toEqual({
        atWallMs: gapEnd,
        date: day,
        atMs: hhmm("02:45"),
        dayPlan: "day",
        action: actionOf("c"),
      });
      for (let t = gapEnd - 3 * HOUR; t < gapEnd + 3 * HOUR; t += MINUTE)
        expect(actionLabel(changeInForce(s, t).action)).not.toBe("b");
      const changes = changesBetween(s, gapEnd - 2 * HOUR, gapEnd + 2 * HOUR, 10).map(describeChange);
      expect(changes.map((c) => c.slice(11))).toEqual(["01:30 a", "02:45 c", "04:00 d"]);
    });

    it(`${zone}: an event at 03:00 overtakes one in the gap at the same instant`, () => {
      const tie = schedule(zone, { day: ["02:30 x", "03:00 y"], other: ["08:00 o"] }, calendar);
      expect(describeChange(changeInForce(tie, gapEnd)).slice(11)).toBe("03:00 y");
      expect(
        changesBetween(tie, gapEnd - HOUR, gapEnd + HOUR, 10).map((c) => describeChange(c).slice(11)),
      ).toEqual(["03:00 y"]);
    });
  }

  it("makes no change at the gap's end when the event in force there does not change the action", () => {
    const s = schedule(
      BERLIN,
      { day: ["01:30 a", "02:15 b", "02:45 a", "04:00 d"], other: ["08:00 a"] },
      calendar,
    );
    const changes = changesBetween(s, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12), 10).map(describeChange);
    expect(changes).toEqual(["2026-03-29 04:00 d"]);
  });
});

describe("events in a fall-back fold", () => {
  // Berlin 2026-10-25 and Sydney 2026-04-05 are Sundays that run 02:00–03:00 twice.
  const calendar: CalendarRule[] = [
    { kind: "weekdays", weekdays: ALL, dayPlan: "other" },
    { kind: "date", date: date(2026, 10, 25), dayPlan: "day" },
    { kind: "date", date: date(2026, 4, 5), dayPlan: "day" },
  ];
  const s = (zone: string) =>
    schedule(zone, { day: ["01:30 a", "02:15 p", "02:45 q", "03:30 r"], other: ["08:00 o"] }, calendar);

  for (const [zone, firstTwo] of [
    [BERLIN, utc(2026, 10, 25, 0)], // 02:00 CEST
    [SYDNEY, utc(2026, 4, 4, 15)], // 02:00 AEDT
  ] as const) {
    it(`${zone}: each happens once, at its first occurrence, and stays in force through the repeat`, () => {
      const changes = changesBetween(s(zone), firstTwo - 3 * HOUR, firstTwo + 4 * HOUR, 10);
      expect(changes.map((c) => describeChange(c).slice(11))).toEqual([
        "01:30 a",
        "02:15 p",
        "02:45 q",
        "03:30 r",
      ]);
      expect(changes.map((c) => c.atWallMs)).toEqual([
        firstTwo - 30 * MINUTE,
        firstTwo + 15 * MINUTE,
        firstTwo + 45 * MINUTE,
        firstTwo + 150 * MINUTE, // 03:30 after an hour repeated
      ]);
      // The second 02:15 and the second 02:45: still q, from the first 02:45.
      for (const repeat of [firstTwo + 75 * MINUTE, firstTwo + 105 * MINUTE, firstTwo + 2 * HOUR - 1]) {
        expect(localTimeOf(zone, repeat).msOfDay).toBeLessThan(3 * HOUR);
        expect(changeInForce(s(zone), repeat)).toMatchObject({
          atWallMs: firstTwo + 45 * MINUTE,
          atMs: hhmm("02:45"),
        });
      }
    });
  }
});

describe("days that change their offset at midnight (America/Santiago)", () => {
  // 2026-09-06 skips 00:00–01:00 (-04:00 to -03:00); 2026-04-04 runs 23:00–24:00 twice (-03:00, -04:00).
  const s = schedule("America/Santiago", { day: ["00:00 n", "12:00 d", "23:30 l"] }, [
    { kind: "weekdays", weekdays: ALL, dayPlan: "day" },
  ]);

  it("moves midnight's event to the gap's end and keeps the fold's event in force through the repeat", () => {
    expect(changeInForce(s, utc(2026, 9, 6, 4))).toMatchObject({
      atWallMs: utc(2026, 9, 6, 4),
      atMs: 0,
      date: date(2026, 9, 6),
    });
    expect(changeInForce(s, utc(2026, 9, 6, 4) - 1)).toMatchObject({
      atMs: hhmm("23:30"),
      date: date(2026, 9, 5),
    });
    // 23:30 on 04-04 first at 02:30 UTC; the repeated 23:30 at 03:30 UTC; 00:00 on 04-05 at 04:00 UTC.
    expect(changeInForce(s, utc(2026, 4, 5, 3, 45))).toMatchObject({
      atWallMs: utc(2026, 4, 5, 2, 30),
      date: date(2026, 4, 4),
    });
    const changes = changesBetween(s, utc(2026, 4, 4, 12), utc(2026, 4, 5, 12), 10);
    expect(changes.map((c) => [describeChange(c), c.atWallMs])).toEqual([
      ["2026-04-04 12:00 d", utc(2026, 4, 4, 15)],
      ["2026-04-04 23:30 l", utc(2026, 4, 5, 2, 30)],
      ["2026-04-05 00:00 n", utc(2026, 4, 5, 4)],
    ]);
  });
});

describe("folds that repeat a day's first hour, or run into the day before", () => {
  const s = (zone: string) =>
    schedule(zone, { day: ["00:00 n", "00:30 h", "12:00 d", "23:30 l"] }, [
      { kind: "weekdays", weekdays: ALL, dayPlan: "day" },
    ]);

  it("America/Havana (2026-11-01 runs 00:00–01:00 twice): the day's first events at their first occurrence", () => {
    const havana = s("America/Havana");
    // 00:00 CDT is 04:00 UTC, 00:30 CDT 04:30; the change back to CST is at 05:00 UTC.
    for (const [wall, atWallMs, atMs] of [
      [utc(2026, 11, 1, 4, 10), utc(2026, 11, 1, 4), 0],
      [utc(2026, 11, 1, 5, 10), utc(2026, 11, 1, 4, 30), hhmm("00:30")], // the second 00:10
      [utc(2026, 11, 1, 5, 40), utc(2026, 11, 1, 4, 30), hhmm("00:30")], // the second 00:40
    ] as const)
      expect(changeInForce(havana, wall), new Date(wall).toISOString()).toMatchObject({
        atWallMs,
        atMs,
        date: date(2026, 11, 1),
      });
    expect(
      changesBetween(havana, utc(2026, 11, 1, 3, 45), utc(2026, 11, 1, 7), 10).map((c) => c.atWallMs),
    ).toEqual([utc(2026, 11, 1, 4), utc(2026, 11, 1, 4, 30)]);
  });

  it("America/Goose_Bay (2009-11-01 fell back from 00:01 to 23:01 on 10-31): the next day's event is already in force", () => {
    const gooseBay = s("America/Goose_Bay");
    // 10-31 23:30 ADT at 02:30 UTC, 11-01 00:00 ADT at 03:00 UTC, then 10-31 23:01 AST at 03:01 UTC.
    expect(changeInForce(gooseBay, utc(2009, 11, 1, 3, 30))).toMatchObject({
      atWallMs: utc(2009, 11, 1, 3),
      date: date(2009, 11, 1),
      atMs: 0,
    });
    expect(changeInForce(gooseBay, utc(2009, 11, 1, 4, 10))).toMatchObject({
      atWallMs: utc(2009, 11, 1, 3),
      date: date(2009, 11, 1),
      atMs: 0,
    });
    expect(
      changesBetween(gooseBay, utc(2009, 11, 1, 2), utc(2009, 11, 1, 5), 10).map(describeChange),
    ).toEqual(["2009-10-31 23:30 l", "2009-11-01 00:00 n", "2009-11-01 00:30 h"]);
  });
});

describe("the changes between two instants", () => {
  const s = schedule(
    BERLIN,
    {
      weekday: [
        "00:30 flash",
        "05:00 off-peak",
        "06:30 am-peak",
        "09:00 off-peak",
        "12:00 off-peak",
        "23:00 flash",
      ],
      weekend: ["00:30 flash", "08:00 off-peak", "23:00 flash"],
    },
    [
      { kind: "weekdays", weekdays: WEEKDAYS, dayPlan: "weekday" },
      { kind: "weekdays", weekdays: WEEKEND, dayPlan: "weekend" },
    ],
  );
  // Monday 2026-07-20 00:00 CEST is 2026-07-19 22:00 UTC.
  const monday = utc(2026, 7, 19, 22);

  it("skips events that do not change the action, across midnight too", () => {
    expect(changesBetween(s, monday, monday + 24 * HOUR, 100).map(describeChange)).toEqual([
      "2026-07-20 05:00 off-peak",
      "2026-07-20 06:30 am-peak",
      "2026-07-20 09:00 off-peak",
      "2026-07-20 23:00 flash",
    ]);
  });

  it("excludes the start, includes the end and stops at max", () => {
    const at0630 = monday + hhmm("06:30");
    expect(changesBetween(s, at0630, at0630 + 3 * HOUR, 10).map(describeChange)).toEqual([
      "2026-07-20 09:00 off-peak",
    ]);
    expect(changesBetween(s, at0630 - 1, at0630, 10).map(describeChange)).toEqual([
      "2026-07-20 06:30 am-peak",
    ]);
    expect(changesBetween(s, monday, monday + 7 * 24 * HOUR, 2)).toHaveLength(2);
    expect(changesBetween(s, monday, monday + 7 * 24 * HOUR, 0)).toEqual([]);
    expect(changesBetween(s, monday, monday, 10)).toEqual([]);
    expect(changesBetween(s, monday + HOUR, monday, 10)).toEqual([]);
  });

  it("of a week hold both day plans, five weekdays and a weekend", () => {
    const week = changesBetween(s, monday, monday + 7 * 24 * HOUR, 100);
    expect(week).toHaveLength(5 * 4 + 2 * 2);
    expect(week.filter((c) => c.dayPlan === "weekend").map(describeChange)).toEqual([
      "2026-07-25 08:00 off-peak",
      "2026-07-25 23:00 flash",
      "2026-07-26 08:00 off-peak",
      "2026-07-26 23:00 flash",
    ]);
  });

  it("give the next change after an instant, or none within the horizon", () => {
    expect(nextChange(s, monday)).toEqual(changesBetween(s, monday, monday + 24 * HOUR, 1)[0]);
    const steady = schedule(BERLIN, { day: ["06:00 flash", "18:00 flash"], eve: ["06:00 eve"] }, [
      { kind: "weekdays", weekdays: ALL, dayPlan: "day" },
      { kind: "date", date: date(2026, 12, 24), dayPlan: "eve" },
    ]);
    const newYear = utc(2026, 1, 1);
    expect(nextChange(steady, newYear)).toMatchObject({ date: date(2026, 12, 24), atMs: 6 * HOUR });
    expect(nextChange(steady, newYear, 30)).toBeNull();
    expect(nextChange(steady, utc(2026, 12, 24, 6))).toMatchObject({
      date: date(2026, 12, 25),
      atMs: 6 * HOUR,
    });
    expect(nextChange(steady, utc(2026, 12, 25, 6))).toBeNull();
  });
});

describe("actions", () => {
  it("are the same when both flash or both run one plan", () => {
    expect(sameAction({ kind: "flash" }, { kind: "flash" })).toBe(true);
    expect(sameAction(actionOf("a"), actionOf("a"))).toBe(true);
    expect(sameAction(actionOf("a"), actionOf("b"))).toBe(false);
    expect(sameAction(actionOf("flash"), actionOf("a"))).toBe(false);
    expect(sameAction(actionOf("a"), actionOf("flash"))).toBe(false);
    expect(actionLabel(actionOf("am-peak"))).toBe("am-peak");
    expect(actionLabel({ kind: "flash" })).toBe("flash");
  });
});

describe("a schedule's problems", () => {
  const good = (): { dayPlans: Record<string, string[]>; calendar: CalendarRule[] } => ({
    dayPlans: {
      weekday: ["06:00 am", "10:00 off"],
      weekend: ["08:00 off"],
      summer: ["07:00 off"],
      holiday: ["09:00 off"],
    },
    calendar: [
      { kind: "weekdays", weekdays: WEEKDAYS, dayPlan: "weekday" },
      { kind: "weekdays", weekdays: WEEKEND, dayPlan: "weekend" },
      {
        kind: "range",
        from: date(2026, 7, 20),
        to: date(2026, 8, 28),
        weekdays: WEEKDAYS,
        dayPlan: "summer",
      },
      { kind: "range", from: date(2026, 8, 1), to: date(2026, 8, 31), weekdays: WEEKEND, dayPlan: "holiday" },
      { kind: "yearly", month: 12, day: 25, dayPlan: "holiday", name: "Christmas Day" },
      { kind: "yearly", month: 2, day: 29, dayPlan: "holiday" },
      { kind: "date", date: date(2026, 12, 25), dayPlan: "weekend" },
      { kind: "date", date: date(2026, 12, 24), dayPlan: "weekend", name: "Christmas Eve 2026" },
    ],
  });
  const problemsOf = (edit: (f: ReturnType<typeof good>) => void) => {
    const f = good();
    edit(f);
    return scheduleProblems(schedule(BERLIN, f.dayPlans, f.calendar));
  };

  it("are none for a schedule whose rules of different precedence overlap", () => {
    expect(problemsOf(() => {})).toEqual([]);
  });

  it("name a weekday in two weekdays rules", () => {
    const problems = problemsOf((f) => {
      f.calendar[1] = { kind: "weekdays", weekdays: [5, 6, 7], dayPlan: "weekend" };
    });
    expect(problems).toEqual([
      {
        path: ["calendar", 1, "weekdays", 0],
        message: expect.stringMatching(/^fri is already in calendar\[0\]: .*equal precedence/),
      },
    ]);
  });

  it("name two ranges that share a day on a common weekday, and only those", () => {
    const overlapping = problemsOf((f) => {
      f.calendar.push({
        kind: "range",
        from: date(2026, 8, 28),
        to: date(2026, 9, 30),
        weekdays: [5],
        dayPlan: "holiday",
        name: "autumn",
      });
    });
    expect(overlapping).toEqual([
      { path: ["calendar", 8], message: expect.stringContaining("both pick 2026-08-28 (fri)") },
    ]);
    expect(overlapping[0]?.message).toMatch(
      /calendar\[8\] \(autumn\) \(2026-08-28 to 2026-09-30\) and calendar\[2\]/,
    );
    // The same dates on Wednesdays: the summer range's only day in them is a Friday. And a three-day
    // overlap (Sat–Mon) with no Tuesday or Wednesday in it.
    expect(
      problemsOf((f) =>
        f.calendar.push({
          kind: "range",
          from: date(2026, 8, 28),
          to: date(2026, 9, 30),
          weekdays: [3],
          dayPlan: "holiday",
        }),
      ),
    ).toEqual([]);
    expect(
      problemsOf((f) =>
        f.calendar.push(
          { kind: "range", from: date(2026, 9, 5), to: date(2026, 9, 7), weekdays: ALL, dayPlan: "holiday" },
          {
            kind: "range",
            from: date(2026, 9, 7),
            to: date(2026, 9, 9),
            weekdays: [2, 3],
            dayPlan: "holiday",
          },
        ),
      ),
    ).toEqual([]);
    expect(
      problemsOf((f) =>
        f.calendar.push(
          { kind: "range", from: date(2026, 9, 5), to: date(2026, 9, 8), weekdays: ALL, dayPlan: "holiday" },
          {
            kind: "range",
            from: date(2026, 9, 8),
            to: date(2026, 9, 9),
            weekdays: [2, 3],
            dayPlan: "holiday",
          },
        ),
      ),
    ).toEqual([{ path: ["calendar", 9], message: expect.stringContaining("both pick 2026-09-08 (tue)") }]);
  });

  it("name the same yearly day or the same date twice", () => {
    expect(
      problemsOf((f) => f.calendar.push({ kind: "yearly", month: 12, day: 25, dayPlan: "weekend" })),
    ).toEqual([
      {
        path: ["calendar", 8, "yearly"],
        message: expect.stringContaining("12-25 is already given by calendar[4] (Christmas Day)"),
      },
    ]);
    expect(
      problemsOf((f) => f.calendar.push({ kind: "date", date: date(2026, 12, 24), dayPlan: "holiday" })),
    ).toEqual([
      {
        path: ["calendar", 8, "date"],
        message: expect.stringContaining("2026-12-24 is already given by calendar[7] (Christmas Eve 2026)"),
      },
    ]);
  });

  it("name the weekdays no weekdays rule covers, whatever other rules there are", () => {
    expect(problemsOf((f) => f.calendar.splice(1, 1))).toEqual([
      {
        path: ["calendar"],
        message:
          "no weekdays rule covers sat, sun: every day needs a day plan; add { weekdays: [sat, sun], dayPlan: … } or add the days to a weekdays rule",
      },
    ]);
  });

  it("name a day plan that is not defined, and one that is not used", () => {
    const problems = problemsOf((f) => {
      (f.calendar[6] as { dayPlan: string }).dayPlan = "weekends";
      delete f.dayPlans.summer;
      f.calendar.splice(2, 1);
    });
    expect(problems).toEqual([
      {
        path: ["calendar", 5, "dayPlan"],
        message: `day plan "weekends" is not defined: define it under dayPlans, or name one of "weekday", "weekend", "holiday"`,
      },
    ]);
    expect(problemsOf((f) => (f.dayPlans.spare = ["06:00 x"]))).toEqual([
      {
        path: ["dayPlans", "spare"],
        message: `day plan "spare" is not used by any calendar rule: name it in a rule's dayPlan, or remove it`,
      },
    ]);
    // Names that every object has are not day plans.
    expect(
      problemsOf((f) => ((f.calendar[7] as { dayPlan: string }).dayPlan = "constructor")).map((p) => p.path),
    ).toEqual([["calendar", 7, "dayPlan"]]);
  });

  it("name two events at one time, by their place in the day plan as given", () => {
    const s = schedule(BERLIN, good().dayPlans, good().calendar);
    const unsorted = {
      ...s,
      dayPlans: {
        ...s.dayPlans,
        weekday: [...(s.dayPlans.weekday ?? []), { atMs: 6 * HOUR, action: actionOf("pm") }],
      },
    };
    expect(scheduleProblems(unsorted)).toEqual([
      {
        path: ["dayPlans", "weekday", 2, "at"],
        message: expect.stringMatching(/^day plan "weekday" has two events at 06:00: /),
      },
    ]);
  });

  it("name values the core cannot run: an empty day plan, times outside the day, dates that do not exist", () => {
    const s = schedule(BERLIN, good().dayPlans, good().calendar);
    const broken: Schedule = {
      ...s,
      dayPlans: { ...s.dayPlans, summer: [], holiday: [{ atMs: hhmm("24:30"), action: actionOf("x") }] },
      calendar: [
        ...s.calendar,
        { kind: "yearly", month: 2, day: 30, dayPlan: "holiday" },
        { kind: "date", date: date(2027, 2, 29), dayPlan: "holiday" },
        { kind: "range", from: date(2026, 10, 31), to: date(2026, 10, 1), weekdays: ALL, dayPlan: "holiday" },
        { kind: "range", from: date(2026, 11, 31), to: date(2026, 12, 1), weekdays: [8], dayPlan: "holiday" },
        { kind: "weekdays", weekdays: [], dayPlan: "holiday" },
      ],
    };
    // Each message up to its advice, which follows the first ": ".
    expect(
      scheduleProblems(broken).map((p) => [p.path, p.message.slice(0, p.message.indexOf(": "))]),
    ).toEqual([
      [["dayPlans", "summer"], `day plan "summer" has no events`],
      [["dayPlans", "holiday", 0, "at"], "time 24:30 is outside the day"],
      [["calendar", 8, "yearly"], "02-30 is not a day of the year"],
      [["calendar", 9, "date"], "2027-02-29 is not a calendar date"],
      [["calendar", 10, "to"], "calendar[10] ends (2026-10-01) before it starts (2026-10-31)"],
      [["calendar", 11, "from"], "2026-11-31 is not a calendar date"],
      [["calendar", 11, "weekdays", 0], "weekday 8 is not a weekday"],
      [["calendar", 12, "weekdays"], "calendar[12] lists no weekdays, so it picks no day"],
    ]);
  });
});
