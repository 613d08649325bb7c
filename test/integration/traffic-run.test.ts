import { describe, expect, it } from "vitest";
import { loadDemand } from "../../gateway/config/load-demand.js";
import { loadCorridor, loadIntersection, loadPlan, planFileFor } from "../../gateway/config/load.js";
import { runTraffic } from "../../simulators/traffic/traffic-run.js";
import { hasTool } from "../support/tools.js";

/**
 * The corridor's real controllers driving SUMO through TraCI (simulators/traffic/traffic-run.ts):
 * the example corridor, the AM peak, a few simulated minutes.
 */
const haveSumo =
  hasTool("netconvert", "the traffic-run tests", "sumo") && hasTool("sumo", "the traffic-run tests", "sumo");

function example(planId: string, demandFile: string) {
  const corridor = loadCorridor("config/corridor.yaml");
  return {
    corridor,
    plan: loadPlan(planFileFor(corridor, planId)),
    demand: loadDemand(demandFile, corridor),
    intersections: [...corridor.intersectionFiles.values()].map((file) => loadIntersection(file)),
  };
}

describe.runIf(haveSumo)("the controllers in the loop with SUMO", () => {
  it("SUMO's signals agree with the controllers' lamps at every step, no fault, no collision; the wave's direction stops less", async () => {
    const report = await runTraffic({
      ...example("am-peak", "config/demand/am-peak.yaml"),
      warmupS: 240,
      durationS: 600,
      seed: 3,
      checkSignals: true,
    });
    // Every light read back from SUMO after every 0.1 s step equals what the controller's aspects mean.
    expect(report.safety.signalMismatches).toBe(0);
    expect(report.safety.faults).toEqual([]);
    expect(report.safety.collisions).toBe(0);
    expect(report.safety.teleports).toBe(0);
    expect(report.sumoVersion).toMatch(/^SUMO 1\./);
    const { eastbound, westbound } = report.directions;
    expect(eastbound.vehicles).toBeGreaterThan(30);
    expect(westbound.vehicles).toBeGreaterThan(10);
    // The AM peak is an eastbound wave: eastbound stops far less after elm than westbound does.
    expect(eastbound.stopsPerVehicleDownstream).toBeLessThan(0.5);
    expect(eastbound.stopsPerVehicleDownstream).toBeLessThan(westbound.stopsPerVehicleDownstream / 2);
    // Downstream of elm, eastbound platoons arrive on green at pine and cedar.
    const pine = report.intersections.find((i) => i.id === "pine");
    expect(pine?.arrivalsOnGreen.eastbound ?? 0).toBeGreaterThan(0.8);
  }, 120_000);

  it("the same cycle and splits with every offset zero stop the eastbound platoon more", async () => {
    const base = example("am-peak", "config/demand/am-peak.yaml");
    const options = { ...base, warmupS: 240, durationS: 600, seed: 3 };
    const [plan, zero] = [
      await runTraffic(options),
      await runTraffic({
        ...options,
        offsetsS: new Map(["elm", "oak", "pine", "cedar"].map((id) => [id, 0])),
      }),
    ];
    expect(zero.plan.offsetsS).toEqual({ elm: 0, oak: 0, pine: 0, cedar: 0 });
    expect(zero.directions.eastbound.stopsPerVehicleDownstream).toBeGreaterThan(
      plan.directions.eastbound.stopsPerVehicleDownstream * 3,
    );
  }, 120_000);
});
