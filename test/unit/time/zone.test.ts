import { describe, expect, it } from "vitest";
import {
  addDays,
  formatDate,
  instantOfLocal,
  isKnownTimeZone,
  localTimeOf,
  offsetAt,
  sameDate,
} from "../../../gateway/core/time/zone.js";

/**
 * Civil time in a zone, at both daylight-saving transitions of a zone in each hemisphere: Berlin
 * (CET +01:00 / CEST +02:00; forward on the last Sunday of March, back on the last Sunday of October,
 * both at 01:00 UTC) and Sydney (AEST +10:00 / AEDT +11:00; forward on the first Sunday of October,
 * back on the first Sunday of April, both at 16:00 UTC the day before).
 */

const BERLIN = "Europe/Berlin";
const SYDNEY = "Australia/Sydney";
const HOUR = 3_600_000;
const MINUTE = 60_000;
const at = (h: number, m = 0) => h * HOUR + m * MINUTE;
const utc = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0) => Date.UTC(y, mo - 1, d, h, mi, s);
const date = (year: number, month: number, day: number) => ({ year, month, day });

/** Every instant whose local date and time in the zone is this one (a brute-force check, minute by minute). */
function occurrences(
  zone: string,
  d: { year: number; month: number; day: number },
  msOfDay: number,
): number[] {
  const found: number[] = [];
  const nominal = utc(d.year, d.month, d.day) + msOfDay;
  for (let t = nominal - 15 * HOUR; t <= nominal + 13 * HOUR; t += MINUTE) {
    const local = localTimeOf(zone, t);
    if (sameDate(local, d) && local.msOfDay === msOfDay) found.push(t);
  }
  return found;
}

describe("the names of time zones", () => {
  it("knows IANA names", () => {
    for (const zone of [BERLIN, SYDNEY, "America/Chicago", "America/Santiago", "Asia/Kolkata", "UTC"])
      expect(isKnownTimeZone(zone), zone).toBe(true);
  });

  it("refuses offsets, abbreviations, invented zones and paths", () => {
    for (const zone of [
      "+01:00",
      "CEST",
      "Mars/Base",
      "../etc",
      "",
      "Europe/",
      "/Europe/Berlin",
      "Europe//Berlin",
    ])
      expect(isKnownTimeZone(zone), zone).toBe(false);
  });
});

describe("offsets and local times", () => {
  it("gives each zone's standard and summer offsets, the hemispheres' summers opposite", () => {
    expect(offsetAt(BERLIN, utc(2026, 1, 15, 12))).toBe(HOUR);
    expect(offsetAt(BERLIN, utc(2026, 7, 15, 12))).toBe(2 * HOUR);
    expect(offsetAt(SYDNEY, utc(2026, 1, 15, 12))).toBe(11 * HOUR);
    expect(offsetAt(SYDNEY, utc(2026, 7, 15, 12))).toBe(10 * HOUR);
    expect(offsetAt("Asia/Kolkata", utc(2026, 7, 15, 12))).toBe(5.5 * HOUR);
    expect(offsetAt("UTC", utc(2026, 7, 15, 12))).toBe(0);
  });

  it("changes the offset at the transition instant, to the second, not before", () => {
    // Berlin forward 2026-03-29 and back 2026-10-25, Sydney back 2026-04-05 and forward 2026-10-04.
    const cases: [string, number, number, number][] = [
      [BERLIN, utc(2026, 3, 29, 1), HOUR, 2 * HOUR],
      [BERLIN, utc(2026, 10, 25, 1), 2 * HOUR, HOUR],
      [SYDNEY, utc(2026, 4, 4, 16), 11 * HOUR, 10 * HOUR],
      [SYDNEY, utc(2026, 10, 3, 16), 10 * HOUR, 11 * HOUR],
    ];
    for (const [zone, change, before, after] of cases) {
      expect(offsetAt(zone, change - 1)).toBe(before);
      expect(offsetAt(zone, change - 1000)).toBe(before);
      expect(offsetAt(zone, change)).toBe(after);
      expect(offsetAt(zone, change + 999)).toBe(after);
    }
  });

  it("reads an instant's local date, time of day and ISO weekday", () => {
    // 2026-03-29 00:59:59.999 UTC is 01:59:59.999 CET, the last instant before the gap; a Sunday.
    expect(localTimeOf(BERLIN, utc(2026, 3, 29, 1) - 1)).toEqual({
      ...date(2026, 3, 29),
      msOfDay: at(1, 59) + 59_999,
      weekday: 7,
    });
    expect(localTimeOf(BERLIN, utc(2026, 3, 29, 1))).toEqual({
      ...date(2026, 3, 29),
      msOfDay: at(3),
      weekday: 7,
    });
    // Sydney is already on Monday while UTC is on Sunday.
    expect(localTimeOf(SYDNEY, utc(2026, 10, 4, 14))).toEqual({
      ...date(2026, 10, 5),
      msOfDay: at(1),
      weekday: 1,
    });
    // Before 1970, and at a local midnight.
    expect(localTimeOf(BERLIN, utc(1969, 12, 31, 23))).toEqual({
      ...date(1970, 1, 1),
      msOfDay: 0,
      weekday: 4,
    });
  });

  it("counts and formats dates across months, years and leap days", () => {
    expect(addDays(date(2028, 2, 28), 1)).toEqual(date(2028, 2, 29));
    expect(addDays(date(2027, 2, 28), 1)).toEqual(date(2027, 3, 1));
    expect(addDays(date(2026, 12, 31), 1)).toEqual(date(2027, 1, 1));
    expect(addDays(date(2026, 1, 1), -1)).toEqual(date(2025, 12, 31));
    expect(addDays(date(2026, 3, 1), 365)).toEqual(date(2027, 3, 1));
    expect(formatDate(date(2026, 3, 9))).toBe("2026-03-09");
    expect(sameDate(date(2026, 3, 9), { ...date(2026, 3, 9) })).toBe(true);
    expect(sameDate(date(2026, 3, 9), date(2026, 9, 3))).toBe(false);
  });
});

describe("the instant of a local time", () => {
  it("is the only instant of a time that happens once", () => {
    expect(instantOfLocal(BERLIN, date(2026, 3, 29), at(1, 59))).toBe(utc(2026, 3, 29, 0, 59));
    expect(instantOfLocal(BERLIN, date(2026, 3, 29), at(3))).toBe(utc(2026, 3, 29, 1));
    expect(instantOfLocal(BERLIN, date(2026, 7, 1), at(12))).toBe(utc(2026, 7, 1, 10));
    expect(instantOfLocal(SYDNEY, date(2026, 10, 4), at(3))).toBe(utc(2026, 10, 3, 16));
    expect(instantOfLocal(SYDNEY, date(2026, 4, 5), at(3))).toBe(utc(2026, 4, 4, 17));
    // 24 h is the next day's midnight.
    expect(instantOfLocal(BERLIN, date(2026, 3, 28), 24 * HOUR)).toBe(
      instantOfLocal(BERLIN, date(2026, 3, 29), 0),
    );
  });

  it("in a spring-forward gap is the gap's end, in both hemispheres", () => {
    // Berlin 2026-03-29 skips 02:00–03:00 CET; Sydney 2026-10-04 skips 02:00–03:00 AEST.
    for (const [zone, day, gapEnd] of [
      [BERLIN, date(2026, 3, 29), utc(2026, 3, 29, 1)],
      [BERLIN, date(2027, 3, 28), utc(2027, 3, 28, 1)],
      [SYDNEY, date(2026, 10, 4), utc(2026, 10, 3, 16)],
      [SYDNEY, date(2027, 10, 3), utc(2027, 10, 2, 16)],
    ] as const) {
      for (const ms of [at(2), at(2, 30), at(2, 59) + 59_000]) {
        expect(occurrences(zone, day, ms)).toEqual([]);
        expect(instantOfLocal(zone, day, ms), `${zone} ${formatDate(day)} ${ms}`).toBe(gapEnd);
      }
      expect(localTimeOf(zone, gapEnd).msOfDay).toBe(at(3));
      expect(offsetAt(zone, gapEnd - 1)).toBeLessThan(offsetAt(zone, gapEnd));
    }
  });

  it("in a fall-back fold is its first occurrence, in both hemispheres", () => {
    // Berlin 2026-10-25 runs 02:00–03:00 twice (CEST, then CET); Sydney 2026-04-05 (AEDT, then AEST).
    for (const [zone, day, first] of [
      [BERLIN, date(2026, 10, 25), utc(2026, 10, 25, 0, 30)],
      [BERLIN, date(2027, 10, 31), utc(2027, 10, 31, 0, 30)],
      [SYDNEY, date(2026, 4, 5), utc(2026, 4, 4, 15, 30)],
      [SYDNEY, date(2027, 4, 4), utc(2027, 4, 3, 15, 30)],
    ] as const) {
      expect(occurrences(zone, day, at(2, 30))).toEqual([first, first + HOUR]);
      expect(instantOfLocal(zone, day, at(2, 30))).toBe(first);
      expect(instantOfLocal(zone, day, at(2))).toBe(first - 30 * MINUTE);
      // 03:00 is after the fold: it happens once, an hour and a half after the first 02:30.
      expect(occurrences(zone, day, at(3))).toEqual([first + 90 * MINUTE]);
      expect(instantOfLocal(zone, day, at(3))).toBe(first + 90 * MINUTE);
    }
  });

  it("keeps local order across both transitions", () => {
    for (const [zone, day] of [
      [BERLIN, date(2026, 3, 29)],
      [BERLIN, date(2026, 10, 25)],
      [SYDNEY, date(2026, 4, 5)],
      [SYDNEY, date(2026, 10, 4)],
    ] as const) {
      let previous = -Infinity;
      for (let ms = 0; ms <= 24 * HOUR; ms += 5 * MINUTE) {
        const instant = instantOfLocal(zone, day, ms);
        expect(instant).toBeGreaterThanOrEqual(previous);
        previous = instant;
      }
    }
  });

  it("reads zones whose changes are at midnight (Santiago) or half an hour (Lord Howe)", () => {
    // Santiago 2026-09-06 skips 00:00–01:00 (-04:00 to -03:00); 2026-04-04 runs 23:00–24:00 twice.
    expect(instantOfLocal("America/Santiago", date(2026, 9, 6), at(0, 30))).toBe(utc(2026, 9, 6, 4));
    expect(instantOfLocal("America/Santiago", date(2026, 9, 6), 0)).toBe(utc(2026, 9, 6, 4));
    expect(instantOfLocal("America/Santiago", date(2026, 4, 4), at(23, 30))).toBe(utc(2026, 4, 5, 2, 30));
    // Lord Howe 2026-10-04 skips 02:00–02:30 (+10:30 to +11:00).
    expect(instantOfLocal("Australia/Lord_Howe", date(2026, 10, 4), at(2, 15))).toBe(
      utc(2026, 10, 3, 15, 30),
    );
  });
});

describe("a local time with a fraction of a second in a gap", () => {
  it("is the gap's end exactly: local order is kept below the second", () => {
    const inGap = instantOfLocal(BERLIN, date(2026, 3, 29), at(2, 30) + 500);
    const gapEnd = instantOfLocal(BERLIN, date(2026, 3, 29), at(3));
    expect(inGap).toBe(utc(2026, 3, 29, 1));
    expect(inGap).toBeLessThanOrEqual(gapEnd);
  });
});
