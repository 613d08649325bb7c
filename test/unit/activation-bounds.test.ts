import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  activationRequestRefusal,
  checkPrepareTiming,
  DEFAULT_PREPARE_TIMING_RULES,
  MAX_ACTIVATION_AHEAD_MS,
} from "../../gateway/core/corridor/prepare-check.js";
import { PLAN_LIMITS } from "../../gateway/core/plan.js";

/**
 * A plan change set far ahead holds one of the controller's few places for waiting plans for that long
 * (three set in the year 2999 wedged every later push): refused by the command line, by a gateway's
 * plan-push command, and — whoever sent the PREPARE — by every participant's vote.
 */
const NOW = Date.UTC(2026, 10, 30, 9, 0, 0);

describe("how far ahead a plan change may be set", () => {
  it("--at: none, or within a day ahead, is taken; the past and past a day are refused, saying why", () => {
    expect(activationRequestRefusal(null, NOW)).toBeNull();
    expect(activationRequestRefusal(NOW + 60_000, NOW)).toBeNull();
    expect(activationRequestRefusal(NOW + MAX_ACTIVATION_AHEAD_MS, NOW)).toBeNull();
    expect(activationRequestRefusal(NOW - 1, NOW)).toMatch(/is in the past/);
    expect(activationRequestRefusal(Date.UTC(2999, 0, 1), NOW)).toMatch(/more than 24 h ahead/);
  });

  it("property: a participant votes no on any activation past a day and a cycle ahead, and the rule never refuses a near one", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1000, max: 10 * MAX_ACTIVATION_AHEAD_MS }), (aheadMs) => {
        const verdict = checkPrepareTiming(DEFAULT_PREPARE_TIMING_RULES, {
          ownClockErrorMs: 0,
          sentAtWallMs: NOW,
          nowWallMs: NOW,
          activationWallMs: NOW + aheadMs,
        });
        const tooFar = aheadMs > MAX_ACTIVATION_AHEAD_MS + PLAN_LIMITS.maxCycleMs;
        expect(verdict.ok).toBe(!tooFar);
        if (!verdict.ok) expect(verdict.reason).toMatch(/more than 24 h ahead/);
      }),
    );
  });
});
