import { PLAN_LIMITS } from "../plan.js";
import type { PrepareVerdict } from "./participant.js";

/** The corridor's clock and lead-time rules for a PREPARE: what a participant checks besides the plan. */
export interface PrepareTimingRules {
  /** A PREPARE whose sender's clock differs from ours by more than this gets a no vote. */
  readonly maxClockErrorMs: number;
  /** A PREPARE must leave at least this long before its activation instant. */
  readonly minLeadMs: number;
}

export const DEFAULT_PREPARE_TIMING_RULES: PrepareTimingRules = { maxClockErrorMs: 1000, minLeadMs: 1000 };

/**
 * The furthest ahead a plan change may be set: a day. Further is a schedule's job, and each waiting
 * change holds one of the controller's few places for pending plans (a change set for the year 2999
 * would hold it for good, and no command takes it back).
 */
export const MAX_ACTIVATION_AHEAD_MS = 24 * 3600_000;

/**
 * Why a requested activation instant (`--at`) cannot be taken, or null: in the past (it would be moved,
 * silently, to the earliest boundary) or further ahead than MAX_ACTIVATION_AHEAD_MS.
 */
export function activationRequestRefusal(atWallMs: number | null, nowWallMs: number): string | null {
  if (atWallMs === null) return null;
  if (atWallMs < nowWallMs)
    return `the activation instant ${new Date(atWallMs).toISOString()} is in the past: give a future instant, or none for the earliest common cycle boundary`;
  if (atWallMs > nowWallMs + MAX_ACTIVATION_AHEAD_MS)
    return `the activation instant ${new Date(atWallMs).toISOString()} is more than ${MAX_ACTIVATION_AHEAD_MS / 3600_000} h ahead: a plan change is pushed at most a day before it takes effect (later changes belong in a schedule)`;
  return null;
}

export interface PrepareTiming {
  /** This gateway's own knowledge of its clock's error (NTP/GPS); null: unknown. */
  readonly ownClockErrorMs: number | null;
  /** The coordinator's wall clock when it sent the PREPARE. */
  readonly sentAtWallMs: number;
  readonly nowWallMs: number;
  readonly activationWallMs: number;
}

/**
 * Clock health and lead time, checked before the plan itself. Pure: the gateway's shell and the
 * deterministic simulator both decide with it. The transit time counts against the clock bound, so
 * the bound must leave room for the broker's latency.
 */
export function checkPrepareTiming(rules: PrepareTimingRules, t: PrepareTiming): PrepareVerdict {
  if (t.ownClockErrorMs !== null && Math.abs(t.ownClockErrorMs) > rules.maxClockErrorMs)
    return {
      ok: false,
      reason: `this gateway's clock error is ${t.ownClockErrorMs} ms, above the corridor's bound of ${rules.maxClockErrorMs} ms`,
    };
  const skew = t.nowWallMs - t.sentAtWallMs;
  if (Math.abs(skew) > rules.maxClockErrorMs)
    return {
      ok: false,
      reason: `clocks disagree: the PREPARE was sent ${skew} ms ago by the coordinator's clock (bound ${rules.maxClockErrorMs} ms); check NTP on both`,
    };
  if (t.activationWallMs < t.nowWallMs + rules.minLeadMs)
    return {
      ok: false,
      reason: `activation ${new Date(t.activationWallMs).toISOString()} is less than ${rules.minLeadMs} ms ahead`,
    };
  // The common boundary lies at most one cycle past the requested instant.
  if (t.activationWallMs > t.nowWallMs + MAX_ACTIVATION_AHEAD_MS + PLAN_LIMITS.maxCycleMs)
    return {
      ok: false,
      reason: `activation ${new Date(t.activationWallMs).toISOString()} is more than ${MAX_ACTIVATION_AHEAD_MS / 3600_000} h ahead: it would hold one of the few places for waiting plan changes for that long`,
    };
  return { ok: true };
}
