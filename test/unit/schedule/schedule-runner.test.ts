import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nextCommonBoundary } from "../../../gateway/core/corridor/boundary.js";
import type { IntersectionPlan } from "../../../gateway/core/model.js";
import type { Schedule } from "../../../gateway/core/schedule/calendar.js";
import {
  type CompiledSchedule,
  type ControllerView,
  HAND_OVER_AHEAD_MS,
  type ManualOverride,
  NO_SCHEDULE,
  type ScheduleRunnerEffect,
  type ScheduleRunnerState,
  scheduledPlanAt,
  scheduleView,
  stepScheduleRunner,
} from "../../../gateway/core/schedule/schedule-runner.js";
import type { TimeReference } from "../../../gateway/core/time/time-reference.js";

const H = 3_600_000;
const M = 60_000;
const ZONE = "Europe/Berlin";
const REF: TimeReference = { dailySyncMs: 2 * H, timeZone: ZONE };

function plan(planId: string, cycleMs: number): IntersectionPlan {
  return {
    intersectionId: "elm",
    planId,
    version: 1,
    cycleMs,
    dailySyncMs: 2 * H,
    timeZone: ZONE,
  } as IntersectionPlan;
}
const PLANS = { "off-peak": plan("off-peak", 80_000), "am-peak": plan("am-peak", 100_000) };

/** Every day: off-peak from 05:00, am-peak 06:30–09:30, flash from 23:00. */
const SCHEDULE: Schedule = {
  id: "weekly",
  version: 1,
  timeZone: ZONE,
  dayPlans: {
    day: [
      { atMs: 5 * H, action: { kind: "plan", planId: "off-peak" } },
      { atMs: 6.5 * H, action: { kind: "plan", planId: "am-peak" } },
      { atMs: 9.5 * H, action: { kind: "plan", planId: "off-peak" } },
      { atMs: 23 * H, action: { kind: "flash" } },
    ],
  },
  calendar: [{ kind: "weekdays", weekdays: [1, 2, 3, 4, 5, 6, 7], dayPlan: "day" }],
};
const COMPILED: CompiledSchedule = {
  kind: "schedule",
  scheduleId: "weekly",
  version: 1,
  digest: "0".repeat(64),
  schedule: SCHEDULE,
  timeReference: REF,
  plans: PLANS,
};

/** 2026-12-01 (a Tuesday, CET = UTC+1) at a local time. */
const local = (hours: number) => Date.UTC(2026, 11, 1) + hours * H - 1 * H;
const AM_PEAK_AT = local(6.5);
const running = (p: IntersectionPlan): ControllerView => ({
  planId: p.planId,
  version: p.version,
  cycleMs: p.cycleMs,
});

/** Runs ticks every `stepMs` from `from` to `to`, with the controller as `view` says; all effects with their instants. */
function tickThrough(
  start: ScheduleRunnerState,
  from: number,
  to: number,
  stepMs: number,
  view: (state: ScheduleRunnerState) => ControllerView,
): { state: ScheduleRunnerState; effects: { at: number; effect: ScheduleRunnerEffect }[] } {
  let state = start;
  const effects: { at: number; effect: ScheduleRunnerEffect }[] = [];
  for (let t = from; t <= to; t += stepMs) {
    const step = stepScheduleRunner(state, { type: "tick", controller: view(state) }, t);
    state = step.state;
    for (const effect of step.effects) effects.push({ at: t, effect });
  }
  return { state, effects };
}

function adopted(fromWallMs: number): ScheduleRunnerState {
  return stepScheduleRunner(NO_SCHEDULE, { type: "adopt", compiled: COMPILED, fromWallMs }, fromWallMs).state;
}

describe("schedule runner", () => {
  it("does nothing without a schedule", () => {
    const step = stepScheduleRunner(
      NO_SCHEDULE,
      { type: "tick", controller: running(PLANS["off-peak"]) },
      AM_PEAK_AT,
    );
    expect(step.effects).toEqual([]);
  });

  it("adopting a schedule persists it; the plan already running is not handed over again", () => {
    const adopt = stepScheduleRunner(
      NO_SCHEDULE,
      { type: "adopt", compiled: COMPILED, fromWallMs: local(6) },
      local(6),
    );
    expect(adopt.effects).toEqual([
      {
        type: "persist",
        schedule: { scheduleId: "weekly", version: 1, fromWallMs: local(6) },
        override: null,
        taken: [],
      },
    ]);
    const { effects } = tickThrough(adopt.state, local(6), local(6) + 10 * M, 1000, () =>
      running(PLANS["off-peak"]),
    );
    expect(effects).toEqual([]);
  });

  it("hands a change over ahead of its instant, for the first common cycle boundary at or after it", () => {
    const { effects } = tickThrough(adopted(local(6)), local(6), local(7), 500, () =>
      running(PLANS["off-peak"]),
    );
    const handed = effects.filter((e) => e.effect.type === "schedule-plan");
    expect(handed).toHaveLength(1);
    const first = handed[0] as {
      at: number;
      effect: Extract<ScheduleRunnerEffect, { type: "schedule-plan" }>;
    };
    expect(first.at).toBe(AM_PEAK_AT - HAND_OVER_AHEAD_MS);
    expect(first.effect.plan.planId).toBe("am-peak");
    expect(first.effect.activationWallMs).toBe(nextCommonBoundary(AM_PEAK_AT, REF, 100_000));
    expect(first.effect.activationWallMs).toBeGreaterThanOrEqual(AM_PEAK_AT);
  });

  it("a restarted gateway starts with the plan in force by the schedule, and finds none under an override", () => {
    const state = adopted(local(0));
    expect(scheduledPlanAt(state, local(7))?.planId).toBe("am-peak");
    expect(scheduledPlanAt(state, local(10))?.planId).toBe("off-peak");
    expect(scheduledPlanAt(state, local(23.5))).toBeNull(); // flash: the configured start, then flash
    const manual: ManualOverride = {
      planId: "x",
      version: 1,
      fromWallMs: local(7),
      end: { kind: "hold" },
      by: "@op",
    };
    const overridden = stepScheduleRunner(state, { type: "manual", override: manual }, local(7)).state;
    expect(scheduledPlanAt(overridden, local(8))).toBeNull();
  });

  it("a manual change withdraws the schedule's waiting change and wins until the next scheduled change", () => {
    // am-peak handed over at 06:29:30; a manual plan at 06:29:45 takes it back.
    const before = tickThrough(adopted(local(6)), local(6), AM_PEAK_AT - 20_000, 500, () =>
      running(PLANS["off-peak"]),
    );
    const manual: ManualOverride = {
      planId: "special",
      version: 2,
      fromWallMs: AM_PEAK_AT - 10_000,
      end: { kind: "next-change" },
      by: "@alice",
    };
    const step = stepScheduleRunner(before.state, { type: "manual", override: manual }, AM_PEAK_AT - 15_000);
    expect(step.effects.map((e) => e.type)).toEqual(["withdraw-plan", "persist"]);
    const view = scheduleView(step.state, AM_PEAK_AT);
    expect(view.reason).toMatchObject({ kind: "manual", planId: "special", by: "@alice", hold: false });
    // The next change after the manual one's instant is 06:30 itself: the schedule takes over there.
    expect(view.next?.atWallMs).toBe(AM_PEAK_AT);
    const after = tickThrough(step.state, AM_PEAK_AT - 14_500, AM_PEAK_AT + 60_000, 500, () => ({
      planId: "special",
      version: 2,
      cycleMs: 90_000,
    }));
    const handed = after.effects.filter((e) => e.effect.type === "schedule-plan");
    expect(handed.map((e) => (e.effect as { plan: IntersectionPlan }).plan.planId)).toEqual(["am-peak"]);
  });

  it("a manual change cancelled before its instant (plan cancel): the schedule governs again and hands its change over again", () => {
    const before = tickThrough(adopted(local(6)), local(6), AM_PEAK_AT - 20_000, 500, () =>
      running(PLANS["off-peak"]),
    );
    const manual: ManualOverride = {
      planId: "special",
      version: 2,
      fromWallMs: AM_PEAK_AT + 600_000,
      end: { kind: "hold" },
      by: "@alice",
      txnId: "alice-1",
    };
    const overridden = stepScheduleRunner(
      before.state,
      { type: "manual", override: manual },
      AM_PEAK_AT - 15_000,
    );
    expect(overridden.effects.map((e) => e.type)).toEqual(["withdraw-plan", "persist"]);
    // Another transaction's cancel changes nothing; its own ends the override.
    const other = stepScheduleRunner(
      overridden.state,
      { type: "cancel-manual", txnId: "bob-7" },
      AM_PEAK_AT - 14_000,
    );
    expect(other.state).toEqual(overridden.state);
    expect(other.effects).toEqual([]);
    const cancelled = stepScheduleRunner(
      overridden.state,
      { type: "cancel-manual", txnId: "alice-1" },
      AM_PEAK_AT - 14_000,
    );
    expect(cancelled.state.override).toBeNull();
    expect(cancelled.effects.map((e) => e.type)).toEqual(["persist"]);
    const after = tickThrough(cancelled.state, AM_PEAK_AT - 13_500, AM_PEAK_AT + 60_000, 500, () =>
      running(PLANS["off-peak"]),
    );
    const handed = after.effects.filter((e) => e.effect.type === "schedule-plan");
    expect(handed.map((e) => (e.effect as { plan: IntersectionPlan }).plan.planId)).toEqual(["am-peak"]);
  });

  it("a held manual change outlives every scheduled change until the next schedule push", () => {
    const hold: ManualOverride = {
      planId: "special",
      version: 1,
      fromWallMs: local(6),
      end: { kind: "hold" },
      by: "@op",
    };
    const held = stepScheduleRunner(adopted(local(5.5)), { type: "manual", override: hold }, local(6)).state;
    const day = tickThrough(held, local(6), local(30), 60_000, () => ({
      planId: "special",
      version: 1,
      cycleMs: 90_000,
    }));
    expect(day.effects).toEqual([]);
    const repushed = stepScheduleRunner(
      day.state,
      { type: "adopt", compiled: { ...COMPILED, version: 2 }, fromWallMs: local(30) },
      local(30),
    );
    expect(repushed.state.override).toBeNull();
  });

  it("an override that ends withdraws its manual plan if that has not taken effect yet", () => {
    const manual: ManualOverride = {
      planId: "special",
      version: 1,
      fromWallMs: local(7),
      end: { kind: "hold" },
      by: "@op",
      txnId: "op-123",
    };
    const held = stepScheduleRunner(
      adopted(local(6)),
      { type: "manual", override: manual },
      local(6.9),
    ).state;
    const repushed = stepScheduleRunner(
      held,
      { type: "adopt", compiled: { ...COMPILED, version: 2 }, fromWallMs: local(6.95) },
      local(6.95),
    );
    expect(repushed.effects).toContainEqual({ type: "withdraw-plan", changeId: "op-123" });
    expect(scheduleView(held, local(6.9)).next).toBeNull();
    const until = stepScheduleRunner(
      adopted(local(6)),
      { type: "manual", override: { ...manual, end: { kind: "until", untilWallMs: local(6.95) } } },
      local(6.9),
    ).state;
    expect(scheduleView(until, local(6.9)).next?.atWallMs).toBe(local(6.95));
    const ended = tickThrough(until, local(6.9), local(7), 1000, () => running(PLANS["off-peak"]));
    expect(ended.effects.map((e) => e.effect)).toContainEqual({ type: "withdraw-plan", changeId: "op-123" });
  });

  it("--until: the schedule takes over at the stated instant, at the next common boundary after it", () => {
    const until: ManualOverride = {
      planId: "special",
      version: 1,
      fromWallMs: local(7),
      end: { kind: "until", untilWallMs: local(8) },
      by: "@op",
    };
    const state = stepScheduleRunner(adopted(local(6)), { type: "manual", override: until }, local(7)).state;
    const { effects } = tickThrough(state, local(7), local(8.2), 1000, () => ({
      planId: "special",
      version: 1,
      cycleMs: 90_000,
    }));
    const handed = effects.filter((e) => e.effect.type === "schedule-plan");
    expect(handed).toHaveLength(1);
    expect((handed[0]?.effect as { activationWallMs: number }).activationWallMs).toBe(
      nextCommonBoundary(local(8), REF, 100_000),
    );
    expect(effects.some((e) => e.effect.type === "report")).toBe(true);
  });

  it("enters a scheduled flash at the boundary, and leaves it for a plan at the change instant, not ahead", () => {
    let view = running(PLANS["off-peak"]);
    const night = tickThrough(adopted(local(22)), local(22), local(23.1), 500, () => view);
    const flash = night.effects.filter((e) => e.effect.type === "enter-flash");
    expect(flash).toHaveLength(1);
    expect(flash[0]?.at).toBe(nextCommonBoundary(local(23), REF, 80_000));
    view = running(PLANS["off-peak"]);
    // The next morning: 05:00 off-peak.
    const morning = tickThrough(night.state, local(29) - 40_000, local(29) + 5_000, 500, () => view);
    const types = morning.effects.map((e) => e.effect.type);
    expect(types).toEqual(["schedule-plan", "leave-flash"]);
    expect(morning.effects[0]?.at).toBe(local(29));
  });

  it("gateways that tick at different phases and clocks within the corridor's bound hand over the same boundary", () => {
    fc.assert(
      fc.property(
        // Start instants near a change, where it matters: 06:30, 09:30 and 23:00 ± an hour.
        fc
          .constantFrom(local(5.5), local(8.5), local(22), local(0))
          .chain((at) => fc.integer({ min: at, max: at + 1.5 * H })),
        fc.integer({ min: 400, max: 1000 }),
        fc.integer({ min: -500, max: 500 }),
        (startOffset, tickMs, skewMs) => {
          const start = startOffset;
          const boundaries = [0, skewMs].map((skew) => {
            const state = adopted(start - 3 * H);
            const { effects } = tickThrough(state, start + skew, start + skew + 80 * M, tickMs, () =>
              running(PLANS["off-peak"]),
            );
            return effects
              .filter((e) => e.effect.type === "schedule-plan" || e.effect.type === "enter-flash")
              .map((e) =>
                e.effect.type === "schedule-plan"
                  ? `${e.effect.plan.planId}@${e.effect.activationWallMs}`
                  : "flash",
              );
          });
          expect(boundaries[1]).toEqual(boundaries[0]);
        },
      ),
      { numRuns: 12 },
    );
  });
});
