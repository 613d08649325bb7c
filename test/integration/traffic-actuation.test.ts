import { describe, expect, it } from "vitest";
import { type LoadedDemand, loadDemand } from "../../gateway/config/load-demand.js";
import { loadCorridor, loadIntersection, loadPlan, planFileFor } from "../../gateway/config/load.js";
import { runTraffic, type TrafficReport } from "../../simulators/traffic/traffic-run.js";
import { hasTool } from "../support/tools.js";

/**
 * Detectors in the loop with SUMO (simulators/traffic/traffic-run.ts, issue 18): the stop-bar loops
 * SUMO reports and the seeded push-button presses reach each intersection's controller, which serves
 * its actuated stages on them. The example corridor's off-peak plan (its side and left stages
 * actuated) at the off-peak demand, a few simulated minutes, one seed: deterministic.
 */
const haveSumo =
  hasTool("netconvert", "the traffic-actuation tests", "sumo") &&
  hasTool("sumo", "the traffic-actuation tests", "sumo");

function example() {
  const corridor = loadCorridor("config/corridor.yaml");
  return {
    corridor,
    plan: loadPlan(planFileFor(corridor, "off-peak")),
    demand: loadDemand("config/demand/off-peak.yaml", corridor),
    intersections: [...corridor.intersectionFiles.values()].map((file) => loadIntersection(file)),
  };
}

const actuationAt = (report: TrafficReport, id: string) => {
  const found = report.intersections.find((i) => i.id === id);
  if (!found) throw new Error(`no intersection ${id} in the report`);
  return found.actuation;
};

const IDS = ["elm", "oak", "pine", "cedar"];

describe.runIf(haveSumo)("detectors in the loop with SUMO", () => {
  it("the side streets are served on their loops' calls: actuated stages gap out, no detector fails, the signals agree", async () => {
    const report = await runTraffic({
      ...example(),
      warmupS: 120,
      durationS: 360,
      seed: 1,
      checkSignals: true,
    });
    expect(report.safety.signalMismatches).toBe(0);
    expect(report.safety.faults).toEqual([]);
    expect(report.safety.collisions).toBe(0);
    // Every vehicle detector's loops are read (2 side-street lanes each; oak's ML and cedar's SL 2 more).
    expect(report.detectorReads.loops).toBe(12);
    for (const id of IDS) {
      const a = actuationAt(report, id);
      // Unfed, every detector would fail within 2 s (no reading) and put its groups on max recall.
      expect(a.detectorFailures, id).toEqual([]);
      // Its side street was served on its loops' calls, and an actuated stage ended early because its
      // loops went quiet (oak's side stage holds to the cycle's end when its left stage follows: its
      // left stage gaps out).
      expect(a.greens.S?.starts ?? 0, id).toBeGreaterThan(0);
      const gapOuts = Object.values(a.terminations).reduce((n, t) => n + t.gapOut, 0);
      expect(gapOuts, id).toBeGreaterThan(0);
    }
    // The buttons are pressed (60 an hour each, seeded): some walk across Main St is called and shown.
    const presses = IDS.reduce((n, id) => n + actuationAt(report, id).pedestrianPresses, 0);
    expect(presses).toBeGreaterThan(0);
    expect(IDS.some((id) => (actuationAt(report, id).greens.PM?.starts ?? 0) > 0)).toBe(true);
    expect(report.sideStreets.vehicles).toBeGreaterThan(20);
    expect(report.sideStreets.meanApproachWaitS).toBeGreaterThan(0);
  }, 120_000);

  it("with no side-street traffic and no button pressed the side street is never green, while oak's left turns from Main St still are", async () => {
    const base = example();
    const noSideStreets: LoadedDemand = {
      ...base.demand,
      sideStreets: new Map(
        [...base.demand.sideStreets.keys()].map((id) => [id, { northbound: 0, southbound: 0 }]),
      ),
    };
    const report = await runTraffic({
      ...base,
      demand: noSideStreets,
      warmupS: 0,
      durationS: 300,
      seed: 1,
      pedestrianPressesPerHour: 0,
    });
    expect(report.safety.faults).toEqual([]);
    expect(report.sideStreets.vehicles).toBe(0);
    for (const id of IDS) {
      const a = actuationAt(report, id);
      expect(a.detectorFailures, id).toEqual([]);
      expect(a.pedestrianPresses, id).toBe(0);
      // Never called: never green, never walked, never ended (the whole run: no warm-up left out).
      expect(a.greens.S, id).toEqual({ starts: 0, seconds: 0 });
      expect(a.greens.PM, id).toEqual({ starts: 0, seconds: 0 });
      expect(a.terminations.side, id).toBeUndefined();
      // Main St keeps its green (the coordinated stage rests in it).
      expect(a.greens.M?.seconds ?? 0, id).toBeGreaterThan(200);
    }
    expect(actuationAt(report, "cedar").greens.SL).toEqual({ starts: 0, seconds: 0 });
    // oak's left-turn loops are on Main St: its left turners call ML, which is served on them.
    expect(actuationAt(report, "oak").greens.ML?.starts ?? 0).toBeGreaterThan(0);
  }, 120_000);
});
