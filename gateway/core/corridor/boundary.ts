import { syncAfter, syncAtOrBefore, type TimeReference } from "../time/time-reference.js";

/**
 * The first common cycle boundary at or after `earliestWallMs`: the day's sync point plus whole cycles
 * (every intersection's cycles count from the same sync point, whatever its offset), or the next day's
 * sync point if that comes first (a day of 23 or 25 hours, or a cycle that does not divide the day).
 */
export function nextCommonBoundary(earliestWallMs: number, ref: TimeReference, cycleMs: number): number {
  const sync = syncAtOrBefore(ref, earliestWallMs);
  const byCycles = sync + Math.ceil((earliestWallMs - sync) / cycleMs) * cycleMs;
  return Math.min(byCycles, syncAfter(ref, earliestWallMs));
}
