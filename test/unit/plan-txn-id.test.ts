import { describe, expect, it } from "vitest";
import {
  loadIntersectionSetup,
  loadPlan,
  planFileFor,
  compileIntersectionPlan,
  loadCorridor,
} from "../../gateway/config/load.js";
import { VirtualIntersection } from "../support/drive.js";

const elm = loadIntersectionSetup("config/intersections/elm.yaml");
const corridor = loadCorridor("config/corridor.yaml");
const amPeak = compileIntersectionPlan(
  elm.intersection.intersection,
  loadPlan(planFileFor(corridor, "am-peak")),
  corridor,
);

describe("the transaction id travels with the plan", () => {
  it("from schedule-plan through the controller's queue to plan-activated; two pushes of the same plan and version stay apart", () => {
    const x = new VirtualIntersection(elm.intersection.intersection, elm.initialPlan, {
      monoMs: 0,
      wallMs: Date.UTC(2026, 0, 5, 8, 0, 0),
    });
    x.tick(100);
    // The same plan and version, committed twice for two instants: each activation names its own txn.
    x.dispatch({ type: "schedule-plan", plan: amPeak, activationWallMs: x.wallMs + 20_000, txnId: "op-1" });
    x.dispatch({ type: "schedule-plan", plan: amPeak, activationWallMs: x.wallMs + 400_000, txnId: "op-2" });
    for (let t = 0; t < 900_000; t += 100) x.tick(100);
    const activated = x.signals.flatMap((s) => (s.event.type === "plan-activated" ? [s.event] : []));
    expect(activated.map((e) => e.txnId)).toEqual(["op-1", "op-2"]);
    expect(activated.every((e) => e.planId === "am-peak" && e.version === amPeak.version)).toBe(true);
  });

  it("is null for a change that no transaction committed (the demo's local switch)", () => {
    const x = new VirtualIntersection(elm.intersection.intersection, elm.initialPlan, {
      monoMs: 0,
      wallMs: 0,
    });
    x.dispatch({ type: "schedule-plan", plan: amPeak, activationWallMs: 0 });
    for (let t = 0; t < 200_000; t += 100) x.tick(100);
    const activated = x.signals.find((s) => s.event.type === "plan-activated")?.event;
    expect(activated && activated.type === "plan-activated" ? activated.txnId : "missing").toBeNull();
  });
});
