import { describe, expect, it } from "vitest";
import { loadIntersectionSetup } from "../../gateway/config/load.js";
import { controllerMode, startController, stepController } from "../../gateway/core/controller.js";
import type { Lamps } from "../../gateway/core/model.js";
import { VirtualIntersection } from "../support/drive.js";

const elm = loadIntersectionSetup("config/intersections/elm.yaml");
const intersection = elm.intersection.intersection;
const plan = elm.initialPlan;
const start = { monoMs: 0, wallMs: Date.UTC(2026, 0, 5, 2, 0, 0) };

describe("controller", () => {
  it("on a dark lamp: force-writes the latch before the flash outputs, then stays in fault flash", () => {
    const x = new VirtualIntersection(intersection, plan, start);
    for (let i = 0; i < 120; i++) x.tick(100); // running, M green
    expect(x.mode).not.toBe("fault");
    const darkM = (written: readonly Lamps[]) => [
      { red: false, yellow: false, green: false },
      ...written.slice(1),
    ];
    let effects: string[] = [];
    for (let i = 0; i < 10 && x.mode !== "fault"; i++) {
      x.monoMs += 100;
      x.wallMs += 100;
      x.dispatch({ type: "tick" });
      const step = stepController(x.state, { type: "readback", observed: darkM(x.lastLamps) }, x.now);
      x.state = step.state;
      effects = step.effects.map((e) => e.type);
    }
    expect(controllerMode(x.state)).toBe("fault");
    expect(effects).toEqual(["persist-latch", "write-outputs"]);
    expect(x.state.mon.latch?.kind).toBe("red-fail");
    x.tick(100);
    expect(x.lastAspects).toEqual(["red-flash", "red-flash", "dark", "dark"]);
    for (let i = 0; i < 600; i++) x.tick(100);
    expect(x.mode).toBe("fault");
  });

  it("an operator reset clears the latch and restarts through flash and all-red", () => {
    const x = new VirtualIntersection(intersection, plan, start);
    x.dispatch({ type: "device-lost", device: "io-1", detail: "no answer for 1 s" });
    expect(x.mode).toBe("fault");
    expect(x.state.mon.latch?.message).toContain("device io-1 stopped answering");
    const reset = stepController(x.state, { type: "operator-reset", by: "operator alice" }, x.now);
    expect(reset.effects[0]).toEqual({ type: "clear-latch", by: "operator alice" });
    x.state = reset.state;
    x.tick(100);
    expect(x.mode).toBe("startup");
    expect(x.lastAspects).toEqual(["red-flash", "red-flash", "dark", "dark"]);
  });

  it("restarts in fault when a latch was saved", () => {
    const state = startController(
      intersection,
      plan,
      { kind: "conflict", groups: ["M", "S"], message: "before restart", atWallMs: 1 },
      start,
    );
    const step = stepController(state, { type: "tick" }, { monoMs: 100, wallMs: start.wallMs + 100 });
    expect(controllerMode(step.state)).toBe("fault");
    expect(step.effects).toEqual([
      expect.objectContaining({ type: "write-outputs", aspects: ["red-flash", "red-flash", "dark", "dark"] }),
    ]);
  });
});
