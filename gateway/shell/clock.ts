import type { Now } from "../core/time.js";

/** Where the shell reads time. The core never does: it is handed `Now` with every event. */
export interface Clock {
  now(): Now;
}

/** Lamp timing on the monotonic clock, plan alignment on the wall clock (UTC). */
export const systemClock: Clock = {
  now: () => ({ monoMs: Math.floor(performance.now()), wallMs: Date.now() }),
};

/**
 * A clock whose wall time runs `offsetMs` ahead of (or behind) the base's: the demo's `--clock-start`,
 * to see a scheduled change without waiting for it. Durations (the monotonic clock) are untouched.
 */
export function shiftedClock(base: Clock, offsetMs: number): Clock {
  return {
    now: () => {
      const now = base.now();
      return { monoMs: now.monoMs, wallMs: now.wallMs + offsetMs };
    },
  };
}
