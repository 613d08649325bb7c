import type { Now } from "../core/time.js";

/** Where the shell reads time. The core never does: it is handed `Now` with every event. */
export interface Clock {
  now(): Now;
}

/** Lamp timing on the monotonic clock, plan alignment on the wall clock (UTC). */
export const systemClock: Clock = {
  now: () => ({ monoMs: Math.floor(performance.now()), wallMs: Date.now() }),
};
