import { describe, expect, it } from "vitest";
import { loadIntersectionSetup } from "../../gateway/config/load.js";
import { lateness, planCycle } from "../../gateway/core/correction.js";
import type { Aspect } from "../../gateway/core/model.js";
import { VirtualIntersection } from "../support/drive.js";

const elm = loadIntersectionSetup("config/intersections/elm.yaml");
const intersection = elm.intersection.intersection;
const plan = elm.initialPlan; // off-peak at elm: 80 s cycle, dwell

function at(wallMs: number) {
  return new VirtualIntersection(intersection, plan, { monoMs: 1_000, wallMs });
}

/** Runs `ms` of 100 ms ticks and returns each group's aspect history as [t, aspect] changes. */
function record(x: VirtualIntersection, ms: number) {
  const changes: { t: number; aspects: readonly Aspect[] }[] = [];
  const start = x.monoMs;
  while (x.monoMs - start < ms) {
    x.tick(100);
    const last = changes.at(-1)?.aspects;
    if (!last || last.some((a, i) => a !== x.lastAspects[i]))
      changes.push({ t: x.monoMs - start, aspects: x.lastAspects });
  }
  return changes;
}

describe("start-up", () => {
  it("flashes, then shows all-red, then enters normal operation at a cycle boundary", () => {
    const x = at(Date.UTC(2026, 0, 5, 8, 0, 0));
    const changes = record(x, 12_000);
    // Ticks land at 100, 200, …: flash from the first tick for 6 s, all-red for 4 s, then stage "main".
    expect(changes[0]?.aspects).toEqual(["red-flash", "red-flash", "dark", "dark"]);
    const allRed = changes.find((c) => c.aspects.every((a) => a === "red" || a === "dont-walk"));
    expect(allRed?.t).toBe(6_000);
    const main = changes.find((c) => c.aspects[0] === "green");
    expect(main?.t).toBe(10_000);
    expect(main?.aspects).toEqual(["green", "red", "walk", "dont-walk"]);
    const cycle = x.signals.find((s) => s.event.type === "cycle-start");
    expect(cycle?.now.monoMs).toBe(1_000 + 10_000);
  });

  it("flashes at 50 to 60 flashes per minute", () => {
    const x = at(0);
    let flashes = 0;
    let lit = true;
    for (let t = 0; t < 6_000; t += 10) {
      x.monoMs += 10;
      x.wallMs += 10;
      x.dispatch({ type: "tick" });
      const on = x.lastLamps[0]?.red === true;
      if (on && !lit) flashes++;
      lit = on;
    }
    const perMinute = (flashes / 6) * 60;
    expect(perMinute).toBeGreaterThanOrEqual(50);
    expect(perMinute).toBeLessThanOrEqual(60);
  });
});

describe("offset correction", () => {
  it("measures lateness against the daily sync point, the offset and the reference position", () => {
    // off-peak at elm: offset 0 from the start of green of stage "main" (stage 0); sync 02:00 UTC.
    const sync = Date.UTC(2026, 0, 5, 2, 0, 0);
    expect(lateness(plan, sync)).toBe(0);
    expect(lateness(plan, sync + 80_000 * 7)).toBe(0);
    expect(lateness(plan, sync + 80_000 * 7 + 1_500)).toBe(1_500);
  });

  it("dwell only lengthens, in the coordinated stage, up to its limit", () => {
    const sync = Date.UTC(2026, 0, 5, 2, 0, 0);
    const late = planCycle(plan, sync + 30_000);
    expect(late.correctionMs).toBe(20_000); // 25 % of 80 s
    expect(late.durationsMs).toEqual([46_000 + 20_000, 34_000]);
    expect(late.inStep).toBe(false);
    const nearly = planCycle(plan, sync + 300);
    expect(nearly.correctionMs).toBe(-300);
    expect(nearly.inStep).toBe(true);
  });

  it("brings the intersection in step and reports coordinated", () => {
    const x = at(Date.UTC(2026, 0, 5, 2, 0, 30));
    record(x, 10_000 + 80_000 * 4);
    expect(x.mode).toBe("coordinated");
    const cycles = x.signals.filter((s) => s.event.type === "cycle-start");
    const last = cycles.at(-1)?.now.wallMs as number;
    expect(Math.min(lateness(plan, last), 80_000 - lateness(plan, last))).toBeLessThanOrEqual(500);
  });
});

describe("scheduled flash", () => {
  it("clears through yellow, then flashes main street yellow and the rest red; leaves through all-red", () => {
    const x = at(Date.UTC(2026, 0, 5, 2, 0, 0));
    record(x, 15_000); // in stage main, M green for 5 s
    x.dispatch({ type: "enter-flash" });
    const changes = record(x, 20_000);
    const aspectsOfM = changes.map((c) => c.aspects[0]).filter((a, i, all) => i === 0 || a !== all[i - 1]);
    expect(aspectsOfM.slice(0, 3)).toEqual(["green", "yellow", "red"]);
    expect(x.mode).toBe("flash");
    expect(x.lastAspects).toEqual(["yellow-flash", "red-flash", "dark", "dark"]);
    // M had been green only 5 s: it keeps green until its 10 s minimum before the yellow.
    const yellowAt = changes.find((c) => c.aspects[0] === "yellow")?.t as number;
    expect(yellowAt).toBeGreaterThanOrEqual(5_000);
    x.dispatch({ type: "leave-flash" });
    const back = record(x, 5_000);
    expect(back[0]?.aspects).toEqual(["red", "red", "dont-walk", "dont-walk"]);
    expect(x.mode).not.toBe("flash");
  });
});

describe("plan changes", () => {
  it("rejects a plan compiled for another intersection, and more than four waiting plans", () => {
    const x = at(0);
    const foreign = { ...plan, intersectionId: "oak" };
    x.dispatch({ type: "schedule-plan", plan: foreign, activationWallMs: 0 });
    expect(x.signals.at(-1)?.event).toMatchObject({ type: "plan-rejected" });
    for (let i = 0; i < 5; i++) x.dispatch({ type: "schedule-plan", plan, activationWallMs: 10_000_000 + i });
    const rejected = x.signals.filter((s) => s.event.type === "plan-rejected");
    expect(rejected).toHaveLength(2);
  });
});
