import { describe, expect, it } from "vitest";
import {
  sinceSync,
  syncAfter,
  syncAtOrBefore,
  type TimeReference,
} from "../../../gateway/core/time/time-reference.js";

/**
 * The corridor's daily sync point across both daylight-saving transitions, in each hemisphere, with
 * the sync point at 02:00 (in the spring-forward gap: the gap's end, 03:00 local; in the fall-back fold:
 * its first occurrence) and at 02:30; and the fixed (UTC-based) reference that has no zone.
 */

const HOUR = 3_600_000;
const MINUTE = 60_000;
const utc = (y: number, mo: number, d: number, h = 0, mi = 0) => Date.UTC(y, mo - 1, d, h, mi);

interface Case {
  readonly name: string;
  readonly ref: TimeReference;
  /** Three consecutive sync points, the middle one on the transition day. */
  readonly syncs: readonly [number, number, number];
}

const berlin = (syncMs: number): TimeReference => ({ dailySyncMs: syncMs, timeZone: "Europe/Berlin" });
const sydney = (syncMs: number): TimeReference => ({ dailySyncMs: syncMs, timeZone: "Australia/Sydney" });

const CASES: readonly Case[] = [
  // Berlin spring forward 2026-03-29 at 01:00 UTC (02:00 CET -> 03:00 CEST): 02:00 and 02:30 are in the gap.
  {
    name: "Berlin forward, sync 02:00",
    ref: berlin(2 * HOUR),
    syncs: [utc(2026, 3, 28, 1), utc(2026, 3, 29, 1), utc(2026, 3, 30, 0)],
  },
  {
    name: "Berlin forward, sync 02:30",
    ref: berlin(2.5 * HOUR),
    syncs: [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)],
  },
  // Berlin fall back 2026-10-25 at 01:00 UTC (03:00 CEST -> 02:00 CET): 02:00 and 02:30 happen twice.
  {
    name: "Berlin back, sync 02:00",
    ref: berlin(2 * HOUR),
    syncs: [utc(2026, 10, 24, 0), utc(2026, 10, 25, 0), utc(2026, 10, 26, 1)],
  },
  {
    name: "Berlin back, sync 02:30",
    ref: berlin(2.5 * HOUR),
    syncs: [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
  },
  // Sydney spring forward 2026-10-04 at 16:00 UTC the day before (02:00 AEST -> 03:00 AEDT).
  {
    name: "Sydney forward, sync 02:00",
    ref: sydney(2 * HOUR),
    syncs: [utc(2026, 10, 2, 16), utc(2026, 10, 3, 16), utc(2026, 10, 4, 15)],
  },
  {
    name: "Sydney forward, sync 02:30",
    ref: sydney(2.5 * HOUR),
    syncs: [utc(2026, 10, 2, 16, 30), utc(2026, 10, 3, 16), utc(2026, 10, 4, 15, 30)],
  },
  // Sydney fall back 2026-04-05 at 16:00 UTC the day before (03:00 AEDT -> 02:00 AEST).
  {
    name: "Sydney back, sync 02:00",
    ref: sydney(2 * HOUR),
    syncs: [utc(2026, 4, 3, 15), utc(2026, 4, 4, 15), utc(2026, 4, 5, 16)],
  },
  {
    name: "Sydney back, sync 02:30",
    ref: sydney(2.5 * HOUR),
    syncs: [utc(2026, 4, 3, 15, 30), utc(2026, 4, 4, 15, 30), utc(2026, 4, 5, 16, 30)],
  },
  // No zone: ms after 00:00 UTC, every day 24 h, DST or not.
  {
    name: "fixed, sync 23:00 UTC",
    ref: { dailySyncMs: 23 * HOUR },
    syncs: [utc(2026, 3, 28, 23), utc(2026, 3, 29, 23), utc(2026, 3, 30, 23)],
  },
];

describe.each(CASES)("the daily sync point: $name", ({ ref, syncs }) => {
  const [before, transition, after] = syncs;

  it("is the latest sync point at or before an instant", () => {
    expect(syncAtOrBefore(ref, transition - 1)).toBe(before);
    expect(syncAtOrBefore(ref, transition)).toBe(transition);
    expect(syncAtOrBefore(ref, transition + 1)).toBe(transition);
    expect(syncAtOrBefore(ref, after - 1)).toBe(transition);
    expect(syncAtOrBefore(ref, after)).toBe(after);
    // Every hour between the sync points, including the repeated hour of a fold.
    for (let t = transition; t < after; t += 30 * MINUTE) expect(syncAtOrBefore(ref, t)).toBe(transition);
  });

  it("is followed by the next one, strictly after the instant", () => {
    expect(syncAfter(ref, before)).toBe(transition);
    expect(syncAfter(ref, transition - 1)).toBe(transition);
    expect(syncAfter(ref, transition)).toBe(after);
    for (let t = transition; t < after; t += 30 * MINUTE) expect(syncAfter(ref, t)).toBe(after);
  });

  it("counts the time since the sync point from the instant it happened", () => {
    expect(sinceSync(ref, transition)).toBe(0);
    expect(sinceSync(ref, transition - 1)).toBe(transition - 1 - before);
    expect(sinceSync(ref, after - 1)).toBe(after - 1 - transition);
  });
});

describe("the daily sync point in the fall-back fold", () => {
  it("happens once: the repeated local time does not start a second day", () => {
    // Berlin 2026-10-25: 02:00 CEST at 00:00 UTC is the sync point; 02:00 CET at 01:00 UTC is not.
    const ref = berlin(2 * HOUR);
    expect(syncAtOrBefore(ref, utc(2026, 10, 25, 1))).toBe(utc(2026, 10, 25, 0));
    expect(sinceSync(ref, utc(2026, 10, 25, 1))).toBe(HOUR);
  });

  it("makes the days around the transitions 23, 24 or 25 hours long, as the sync point's local time moves", () => {
    const lengths = (c: Case) => [c.syncs[1] - c.syncs[0], c.syncs[2] - c.syncs[1]].map((ms) => ms / HOUR);
    // A sync point in the gap is the gap's end: the day before ends late, the day after is short.
    expect(lengths(CASES[0] as Case)).toEqual([24, 23]);
    expect(lengths(CASES[1] as Case)).toEqual([23.5, 23.5]);
    expect(lengths(CASES[2] as Case)).toEqual([24, 25]);
    expect(lengths(CASES[8] as Case)).toEqual([24, 24]);
  });
});

describe("the fixed reference", () => {
  it("counts from 00:00 UTC on any day, before 1970 too", () => {
    const ref: TimeReference = { dailySyncMs: 90 * MINUTE };
    expect(syncAtOrBefore(ref, utc(2026, 10, 25, 1, 29))).toBe(utc(2026, 10, 24, 1, 30));
    expect(syncAtOrBefore(ref, utc(2026, 10, 25, 1, 30))).toBe(utc(2026, 10, 25, 1, 30));
    expect(syncAfter(ref, utc(2026, 10, 25, 1, 30))).toBe(utc(2026, 10, 26, 1, 30));
    expect(syncAtOrBefore(ref, utc(1969, 7, 20, 20, 17))).toBe(utc(1969, 7, 20, 1, 30));
    expect(sinceSync(ref, utc(1969, 7, 20, 1, 29))).toBe(24 * HOUR - MINUTE);
  });
});

describe("a fall-back that runs into the previous local day (America/Goose_Bay, 2009-11-01)", () => {
  const ref = { dailySyncMs: 0, timeZone: "America/Goose_Bay" };
  it("still finds the latest sync point at or before the instant, and the first after it", () => {
    const wall = utc(2009, 11, 1, 3, 30);
    const before = syncAtOrBefore(ref, wall);
    const after = syncAfter(ref, wall);
    expect(before).toBeLessThanOrEqual(wall);
    expect(after).toBeGreaterThan(wall);
    expect(before).toBe(utc(2009, 11, 1, 3));
  });
});
