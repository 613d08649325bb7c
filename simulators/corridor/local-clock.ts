import type { Now } from "../../gateway/core/time.js";

/**
 * One machine's clocks as functions of the simulation's true time: a monotonic clock that runs fast or
 * slow by `driftPpm` from an arbitrary origin, and a wall clock off by `skewMs` that drifts the same way.
 */
export class LocalClock {
  constructor(
    readonly skewMs: number,
    readonly driftPpm: number,
    private readonly monoOriginMs: number,
  ) {}

  read(trueMs: number): Now {
    const drifted = trueMs + (trueMs * this.driftPpm) / 1e6;
    return { monoMs: Math.floor(this.monoOriginMs + drifted), wallMs: Math.floor(drifted + this.skewMs) };
  }
}
