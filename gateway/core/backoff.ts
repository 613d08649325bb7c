/** Capped exponential back-off with jitter, for reconnects: pure, handed its random number. */
export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
}

export const MQTT_RECONNECT_BACKOFF: BackoffPolicy = { initialMs: 250, maxMs: 10_000 };

/**
 * The delay before attempt `attempt` (0 for the first retry): the exponential step, capped, then
 * "equal jitter": somewhere in its upper half, so that gateways that lost the broker together do
 * not come back in lockstep and none retries sooner than half its step.
 */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, random01: number): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 30);
  const step = Math.min(policy.maxMs, policy.initialMs * 2 ** exponent);
  const unit = Math.min(Math.max(random01, 0), 1);
  return Math.round(step / 2 + (unit * step) / 2);
}
