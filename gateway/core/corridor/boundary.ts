import { DAY_MS } from "../model.js";

/**
 * The first common cycle boundary at or after `earliestWallMs`: the corridor's daily sync plus whole
 * cycles (every intersection's cycles count from the same sync point, whatever its offset).
 */
export function nextCommonBoundary(earliestWallMs: number, dailySyncMs: number, cycleMs: number): number {
  const base = Math.floor(earliestWallMs / DAY_MS) * DAY_MS + dailySyncMs;
  return base + Math.ceil((earliestWallMs - base) / cycleMs) * cycleMs;
}
