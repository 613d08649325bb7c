import { describe, expect, it } from "vitest";
import {
  compileIntersectionPlan,
  loadCorridor,
  loadIntersection,
  readPlanFile,
} from "../../../gateway/config/load.js";
import type { Intersection, IntersectionPlan } from "../../../gateway/core/model.js";
import { greenWindows, planSite, throughGroup } from "../../../gateway/core/progression/index.js";
import { sinceSync } from "../../../gateway/core/time/time-reference.js";
import { withoutActuation } from "../../support/fixture-intersection.js";
import { VirtualIntersection } from "../../support/drive.js";

const corridor = loadCorridor("config/corridor.yaml");

function compiled(id: string, planId: string): { intersection: Intersection; plan: IntersectionPlan } {
  const { intersection } = loadIntersection(`config/intersections/${id}.yaml`);
  return {
    intersection,
    // The windows are the fixed-time plan's (an actuated plan's coordinated band: the green it is sure of).
    plan: withoutActuation(
      compileIntersectionPlan(intersection, readPlanFile(`config/plans/${planId}.yaml`), corridor),
    ),
  };
}

const mod = (a: number, m: number) => ((a % m) + m) % m;

/**
 * Runs the real controller on 100 ms ticks from start-up until it has been in step for a while, and
 * returns the through group's greens of its last cycles, in cycle time from the daily sync point.
 */
function observedGreens(
  intersection: Intersection,
  plan: IntersectionPlan,
  group: number,
): [number, number][] {
  // A weekday well past its sync point (02:00 Europe/Berlin), so that no sync point falls in the run.
  const startWall = Date.UTC(2026, 2, 4, 9, 0, 7, 300);
  const v = new VirtualIntersection(intersection, plan, { monoMs: 1_000_000, wallMs: startWall });
  const runMs = 14 * plan.cycleMs;
  const recordFrom = startWall + runMs - 3 * plan.cycleMs;
  const greens: [number, number][] = [];
  let since: number | null = null;
  for (let t = 0; t < runMs; t += 100) {
    v.tick(100);
    const isGreen = v.lastAspects[group] === "green";
    if (isGreen && since === null) since = v.wallMs;
    if (!isGreen && since !== null) {
      if (since >= recordFrom) {
        greens.push([
          mod(sinceSync(plan, since), plan.cycleMs),
          mod(sinceSync(plan, v.wallMs), plan.cycleMs),
        ]);
      }
      since = null;
    }
  }
  return greens;
}

describe("the green windows of a compiled plan", () => {
  it("the through group is the first vehicle group of the coordinated stage", () => {
    const { intersection, plan } = compiled("oak", "am-peak");
    const gi = throughGroup(intersection, plan);
    expect(gi).not.toBeNull();
    expect(intersection.groups[gi as number]?.id).toBe("M");
  });

  it("am-peak at oak: Main St green from its stage's start to its end less yellow and red clearance", () => {
    const { intersection, plan } = compiled("oak", "am-peak");
    // Stages left 12 s, main 50 s, side 38 s; offset 25 s at the start of main's green; M: yellow 4, red 2.
    expect(planSite(intersection, plan, 350)).toEqual({
      id: "oak",
      positionM: 350,
      throughGroup: "M",
      green: [{ startMs: 25_000, endMs: 69_000 }],
    });
  });

  it("a group served by consecutive stages stays green through them, across the cycle's end too", () => {
    const { intersection, plan } = compiled("oak", "am-peak");
    const m = intersection.groups.findIndex((g) => g.id === "M");
    // main then left, both serving M: M runs from main's start through left's end.
    const stages = [plan.stages[1]!, { ...plan.stages[0]!, member: plan.stages[1]!.member }, plan.stages[2]!];
    const wrapped: IntersectionPlan = {
      ...plan,
      stages: [stages[1]!, stages[2]!, stages[0]!],
      coordinatedStage: 2,
    };
    // Cycle: left' (M, 12 s), side (38 s), main (M, 50 s); offset 25 s at the start of main (reference 50 s).
    const moved: IntersectionPlan = { ...wrapped, referencePositionMs: 50_000 };
    expect(greenWindows(intersection, moved, m)).toEqual([{ startMs: 25_000, endMs: 81_000 }]);
  });

  it.each(["am-peak", "off-peak", "pm-peak"])(
    "%s: the windows are what the sequencer shows, within a tick, at every intersection",
    (planId) => {
      for (const id of ["elm", "oak", "pine", "cedar"]) {
        const { intersection, plan } = compiled(id, planId);
        const gi = throughGroup(intersection, plan) as number;
        const [window] = greenWindows(intersection, plan, gi);
        const seen = observedGreens(intersection, plan, gi);
        expect(seen.length, `${planId} at ${id}`).toBeGreaterThanOrEqual(2);
        for (const [start, end] of seen) {
          const near = (a: number, b: number) =>
            Math.min(mod(a - b, plan.cycleMs), mod(b - a, plan.cycleMs)) <= 100;
          expect(near(start, window!.startMs), `${planId} at ${id}: green from ${start}`).toBe(true);
          expect(near(end, window!.endMs), `${planId} at ${id}: green until ${end}`).toBe(true);
        }
      }
    },
  );
});
