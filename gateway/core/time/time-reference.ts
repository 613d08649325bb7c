import { mod } from "../units.js";
import { addDays, instantOfLocal, localTimeOf } from "./zone.js";

/**
 * The corridor's common time reference: the daily sync point from which every intersection's cycles
 * and offsets are counted.
 *
 * - With `timeZone` (an IANA name), `dailySyncMs` is the sync point's local time of day, and the sync
 *   point of each local day is that local time's instant (zone.ts: a time in a spring-forward gap is the
 *   gap's end, one in a fall-back fold its first occurrence). Days are then 23, 24 or 25 hours long.
 * - Without it (the corridor's older `utcOffset`), `dailySyncMs` is milliseconds after 00:00 UTC, every
 *   day 24 hours.
 */
export interface TimeReference {
  readonly dailySyncMs: number;
  readonly timeZone?: string;
}

const DAY_MS = 86_400_000;

/**
 * The latest sync point at or before `wallMs`. The local dates either side are looked at too: a
 * fall-back can run into the previous local day, so that the instant's own date is not always the one
 * whose sync point came last.
 */
export function syncAtOrBefore(ref: TimeReference, wallMs: number): number {
  if (ref.timeZone === undefined) return wallMs - mod(wallMs - ref.dailySyncMs, DAY_MS);
  const zone = ref.timeZone;
  const today = localTimeOf(zone, wallMs);
  for (const days of [1, 0, -1, -2]) {
    const sync = instantOfLocal(zone, addDays(today, days), ref.dailySyncMs);
    if (sync <= wallMs) return sync;
  }
  return instantOfLocal(zone, addDays(today, -2), ref.dailySyncMs);
}

/** The first sync point after `wallMs`. */
export function syncAfter(ref: TimeReference, wallMs: number): number {
  if (ref.timeZone === undefined) return syncAtOrBefore(ref, wallMs) + DAY_MS;
  const zone = ref.timeZone;
  const today = localTimeOf(zone, wallMs);
  for (const days of [-1, 0, 1, 2]) {
    const sync = instantOfLocal(zone, addDays(today, days), ref.dailySyncMs);
    if (sync > wallMs) return sync;
  }
  return instantOfLocal(zone, addDays(today, 2), ref.dailySyncMs);
}

/** How far `wallMs` is past the latest sync point: where the day's common cycle grid stands. */
export function sinceSync(ref: TimeReference, wallMs: number): number {
  return wallMs - syncAtOrBefore(ref, wallMs);
}

export function sameTimeReference(a: TimeReference, b: TimeReference): boolean {
  return a.dailySyncMs === b.dailySyncMs && a.timeZone === b.timeZone;
}
