/**
 * "Now", as every pure machine of the core is given it: the monotonic clock (`monoMs`, for every
 * duration: intervals, timeouts, leases) and the wall clock (`wallMs`, only for where the cycle should
 * be and for what is reported). The shell reads both once per tick (gateway/shell/clock.ts).
 */
export interface Now {
  readonly monoMs: number;
  readonly wallMs: number;
}
