import { invariant } from "../invariant.js";

/**
 * Civil time in an IANA time zone, from the runtime's own tz database (ICU, through Intl): deterministic
 * for a given runtime, no clock read, no I/O. The rules for local times that do not exist or exist
 * twice are the corridor's, stated once here and in docs/schedules.md:
 *
 * - a local time in a spring-forward gap (02:30 on a day that skips 02:00–03:00) is the instant the gap
 *   ends (the first instant after it), so that local order is kept: events within one gap all fall at
 *   its end, and the last of them wins;
 * - a local time in a fall-back fold (02:30 on a day that runs 02:00–03:00 twice) is its first
 *   occurrence, so that it happens once.
 */

/** A calendar date: year, month 1–12, day 1–31. */
export interface CivilDate {
  readonly year: number;
  readonly month: number;
  readonly day: number;
}

export interface LocalTime extends CivilDate {
  /** Milliseconds since local midnight. */
  readonly msOfDay: number;
  /** ISO weekday: 1 Monday … 7 Sunday. */
  readonly weekday: number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** Formatters kept at once; zones past it are formatted again (a corridor uses one). */
const MAX_CACHED_ZONES = 16;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(zone: string): Intl.DateTimeFormat {
  const known = formatters.get(zone);
  if (known) return known;
  const created = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "numeric",
    minute: "numeric",
    second: "numeric",
  });
  if (formatters.size >= MAX_CACHED_ZONES) formatters.delete(formatters.keys().next().value as string);
  formatters.set(zone, created);
  return created;
}

/** Does this runtime know the zone by that name? (`Europe/Berlin` yes; `+01:00`, `CEST`, `Mars/Base` no.) */
export function isKnownTimeZone(zone: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(zone)) return false;
  try {
    formatterFor(zone);
    return true;
  } catch {
    return false;
  }
}

/** The zone's offset from UTC at this instant, in ms (local = UTC + offset). */
export function offsetAt(zone: string, utcMs: number): number {
  const wholeSecond = utcMs - (((utcMs % 1000) + 1000) % 1000);
  const p: Record<string, number> = {};
  for (const part of formatterFor(zone).formatToParts(wholeSecond))
    if (part.type !== "literal") p[part.type] = Number(part.value);
  const asUtc = Date.UTC(p.year as number, (p.month as number) - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - wholeSecond;
}

/** The local date, time of day and weekday of an instant in the zone. */
export function localTimeOf(zone: string, utcMs: number): LocalTime {
  return civilOf(utcMs + offsetAt(zone, utcMs));
}

/** A "local" count of ms since 1970 read as a civil date and time. */
function civilOf(localMs: number): LocalTime {
  const dayIndex = Math.floor(localMs / DAY_MS);
  const d = new Date(dayIndex * DAY_MS);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    msOfDay: localMs - dayIndex * DAY_MS,
    weekday: ((d.getUTCDay() + 6) % 7) + 1,
  };
}

/** The date `days` after (or before) `date`. */
export function addDays(date: CivilDate, days: number): CivilDate {
  const d = new Date(Date.UTC(date.year, date.month - 1, date.day + days));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

export function sameDate(a: CivilDate, b: CivilDate): boolean {
  return a.year === b.year && a.month === b.month && a.day === b.day;
}

/** `YYYY-MM-DD`. */
export function formatDate(date: CivilDate): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${String(date.year).padStart(4, "0")}-${pad(date.month)}-${pad(date.day)}`;
}

/**
 * The instant a local date and time of day names in the zone; gap and fold as the module's header says.
 * `msOfDay` may be 0 … 24 h (24 h is the next day's midnight).
 */
export function instantOfLocal(zone: string, date: CivilDate, msOfDay: number): number {
  invariant(msOfDay >= 0 && msOfDay <= DAY_MS, () => `time of day ${msOfDay} ms is outside a day`);
  const asUtc = Date.UTC(date.year, date.month - 1, date.day) + msOfDay;
  // Zones change their offset at most once within a few hours: the offsets a day either side cover it.
  const offsets = new Set([
    offsetAt(zone, asUtc - DAY_MS),
    offsetAt(zone, asUtc),
    offsetAt(zone, asUtc + DAY_MS),
  ]);
  const valid = [...offsets].map((o) => asUtc - o).filter((t) => asUtc - offsetAt(zone, t) === t);
  if (valid.length > 0) return Math.min(...valid);
  return gapEnd(zone, asUtc, offsets);
}

/**
 * The instant a spring-forward gap ends, for a local time inside it: read with the offset before the
 * gap it lies after the change, read with the one after it lies before; the change is between.
 */
function gapEnd(zone: string, asUtc: number, offsets: ReadonlySet<number>): number {
  const sorted = [...offsets].sort((a, b) => a - b);
  let after = asUtc - (sorted[0] as number);
  let before = asUtc - (sorted[sorted.length - 1] as number);
  const finalOffset = offsetAt(zone, after);
  invariant(
    offsetAt(zone, before) !== finalOffset,
    () => `no offset change found in ${zone} near ${new Date(asUtc).toISOString()}`,
  );
  // Zones change on whole seconds: bisect to the second.
  while (after - before > 1000) {
    const mid = before + Math.floor((after - before) / 2000) * 1000;
    if (offsetAt(zone, mid) === finalOffset) after = mid;
    else before = mid;
  }
  // `after` carries the local time's fraction of a second; the change itself is on a whole second.
  return after - (((after % 1000) + 1000) % 1000);
}
