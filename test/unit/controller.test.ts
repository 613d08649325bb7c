import { describe, expect, it } from "vitest";
import { loadIntersectionSetup } from "../../gateway/config/load.js";
import { controllerMode, startController, stepController } from "../../gateway/core/controller.js";
import type { Aspect, Lamps } from "../../gateway/core/model.js";
import { SafetyOracle } from "../../simulators/signal-oracle.js";
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
    expect(x.state.mon.latch?.message).toContain("device io-1 lost");
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

describe("start-up over a field that still shows a running sequence (found by the chaos test, seed 1002)", () => {
  const lit = (red: boolean, yellow: boolean, green: boolean): Lamps => ({ red, yellow, green });
  // A gateway killed with M green and PS walking, restarted before its module's watchdog fired.
  const heldGreen = [
    lit(false, false, true),
    lit(true, false, false),
    lit(false, false, true),
    lit(true, false, false),
  ];

  function startOver(field: readonly Lamps[], aspectsBefore: readonly Aspect[]) {
    const x = new VirtualIntersection(intersection, plan, start);
    x.dispatch({ type: "field-at-start", observed: field });
    const oracle = new SafetyOracle(intersection);
    expect(oracle.observe(aspectsBefore, 0)).toBeNull();
    const shown: (readonly Aspect[])[] = [];
    for (let i = 0; i < 400; i++) {
      x.tick(100);
      const broken = oracle.observe(x.lastAspects, x.monoMs);
      expect(broken).toBeNull();
      expect(x.mode).not.toBe("fault");
      shown.push(x.lastAspects);
    }
    return { x, shown };
  }

  it("takes the green and the walk over, clears them in full, then starts through flash", () => {
    const { x, shown } = startOver(heldGreen, ["green", "red", "walk", "dont-walk"]);
    expect(shown[0]).toEqual(["green", "red", "walk", "dont-walk"]);
    // M holds its minimum green (10 s), then 4 s of yellow; PS its 7 s walk, then 10 s of clearance.
    const firstYellow = shown.findIndex((a) => a[0] === "yellow");
    expect(firstYellow).toBeGreaterThanOrEqual(99);
    expect(shown.filter((a) => a[0] === "yellow")).toHaveLength(40);
    expect(shown.filter((a) => a[2] === "ped-clearance")).toHaveLength(100);
    const flash = shown.findIndex((a) => a[0] === "red-flash");
    expect(flash).toBeGreaterThan(firstYellow);
    expect(shown.slice(flash).some((a) => a[0] === "green")).toBe(true); // then normal operation
    expect(x.mode === "coordinated" || x.mode === "transition").toBe(true);
  });

  it("shows a yellow it finds in full; a pedestrian head it cannot read as walking stays DON'T WALK", () => {
    const yellowM = [
      lit(false, true, false),
      lit(true, false, false),
      lit(true, false, false),
      lit(true, false, false),
    ];
    // PS was clearing when the process died: its module froze the flashing DON'T WALK as steady.
    const { shown } = startOver(yellowM, ["yellow", "red", "dont-walk", "dont-walk"]);
    expect(shown.filter((a) => a[0] === "yellow")).toHaveLength(40);
    expect(shown[0]?.[2]).toBe("dont-walk");
    // Nothing gets green (or WALK) again before the yellow, red clearance, start-up flash and all-red.
    const again = shown.findIndex((a) => a.includes("green") || a.includes("walk"));
    expect(again * 100).toBeGreaterThanOrEqual(4_000 + 2_000 + 6_000 + 4_000);
  });

  it("starts as usual from a field in its safe state (all red) or dark", () => {
    for (const field of [
      [lit(true, false, false), lit(true, false, false), lit(true, false, false), lit(true, false, false)],
      [
        lit(false, false, false),
        lit(false, false, false),
        lit(false, false, false),
        lit(false, false, false),
      ],
    ]) {
      const x = new VirtualIntersection(intersection, plan, start);
      x.dispatch({ type: "field-at-start", observed: field });
      x.tick(100);
      expect(x.lastAspects).toEqual(["red-flash", "red-flash", "dark", "dark"]);
    }
  });
});
