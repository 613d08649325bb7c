import { describe, expect, it } from "vitest";
import { loadIntersectionSetup } from "../../gateway/config/load.js";
import { lampsFor } from "../../gateway/core/lamps.js";
import type { Aspect, Lamps } from "../../gateway/core/model.js";
import {
  checkCommanded,
  checkObserved,
  type MonitorState,
  resetMonitor,
  startMonitor,
} from "../../gateway/core/monitor.js";

// elm: M (vehicle, min green 10 s, yellow 4 s, red clearance 2 s), S (vehicle, yellow 3.5 s, red 2 s),
// PS (pedestrian with M), PM (pedestrian with S).
const elm = loadIntersectionSetup("config/intersections/elm.yaml").intersection.intersection;
const at = (monoMs: number) => ({ monoMs, wallMs: 1_800_000_000_000 + monoMs });

/** Feeds a timeline of commanded aspects; returns the state and the first fault. */
function command(steps: [number, Aspect[]][], from: MonitorState = startMonitor(elm, null)) {
  let state = from;
  for (const [t, aspects] of steps) {
    const verdict = checkCommanded(state, aspects, at(t));
    state = verdict.state;
    if (verdict.fault) return { state, fault: verdict.fault, t };
  }
  return { state, fault: null, t: -1 };
}

const MAIN: Aspect[] = ["green", "red", "walk", "dont-walk"];
const ALL_RED: Aspect[] = ["red", "red", "dont-walk", "dont-walk"];

describe("commanded outputs", () => {
  it("accepts a correct sequence: green, yellow, red clearance, conflicting green", () => {
    const result = command([
      [0, ALL_RED],
      [4_000, MAIN],
      [14_000, ["green", "red", "ped-clearance", "dont-walk"]],
      [24_000, ["yellow", "red", "dont-walk", "dont-walk"]],
      [28_000, ALL_RED],
      [30_000, ["red", "green", "dont-walk", "walk"]],
    ]);
    expect(result.fault).toBeNull();
  });

  it("latches conflicting greens", () => {
    const result = command([[0, ["green", "green", "dont-walk", "dont-walk"]]]);
    expect(result.fault?.kind).toBe("conflict");
    expect(result.fault?.groups).toEqual(["M", "S"]);
    expect(result.fault?.message).toContain("not permissive");
  });

  it("latches a green cut below its minimum", () => {
    const result = command([
      [0, ALL_RED],
      [4_000, MAIN],
      [13_900, ["yellow", "red", "walk", "dont-walk"]],
    ]);
    expect(result.fault?.kind).toBe("min-go-cut");
  });

  it("latches a yellow shorter than its minimum, and green to red without yellow", () => {
    const shortYellow = command([
      [0, ["green", "red", "dont-walk", "dont-walk"]],
      [20_000, ["yellow", "red", "dont-walk", "dont-walk"]],
      [23_900, ALL_RED],
    ]);
    expect(shortYellow.fault?.kind).toBe("clearance-cut");
    expect(shortYellow.fault?.message).toContain("shorter than its 4 s clearance");
    const noYellow = command([
      [0, ["green", "red", "dont-walk", "dont-walk"]],
      [20_000, ALL_RED],
    ]);
    expect(noYellow.fault?.kind).toBe("go-without-clearance");
  });

  it("latches a conflicting green started before the red clearance ended", () => {
    const result = command([
      [0, ["green", "red", "dont-walk", "dont-walk"]],
      [20_000, ["yellow", "red", "dont-walk", "dont-walk"]],
      [24_000, ALL_RED],
      [25_900, ["red", "green", "dont-walk", "dont-walk"]],
    ]);
    expect(result.fault?.kind).toBe("red-clearance-cut");
    expect(result.fault?.groups).toEqual(["S", "M"]);
  });

  it("stays latched until an operator reset, and starts clean after it", () => {
    const latched = command([[0, ["green", "green", "dont-walk", "dont-walk"]]]);
    const after = command([[100, ALL_RED]], latched.state);
    expect(after.state.latch?.kind).toBe("conflict");
    const reset = resetMonitor(after.state);
    expect(reset.latch).toBeNull();
    expect(command([[200, ALL_RED]], reset).fault).toBeNull();
  });
});

describe("readback", () => {
  const lamps = (aspects: Aspect[], on = true): Lamps[] => aspects.map((a) => lampsFor(a, on));

  /** Feeds observed lamps every 100 ms for `ms`; returns when (relative) a fault latched. */
  function observe(commanded: Aspect[], observed: (t: number) => Lamps[], ms: number, flash = false) {
    let state = startMonitor(elm, null);
    for (let t = 0; t <= ms; t += 100) {
      const on = !flash || t % 1100 < 550;
      const verdict = checkObserved(state, observed(t), lamps(commanded, on), commanded, at(t));
      state = verdict.state;
      if (verdict.fault) return { fault: verdict.fault, t };
    }
    return { fault: null, t: -1 };
  }

  it("latches red fail after 800 ms of a dark group, not before", () => {
    const result = observe(
      ALL_RED,
      () => [{ red: false, yellow: false, green: false }, ...lamps(ALL_RED).slice(1)],
      2_000,
    );
    expect(result.fault?.kind).toBe("red-fail");
    expect(result.t).toBe(800);
  });

  it("latches feedback that differs from the command for 1 s (a stuck relay)", () => {
    const stuck = observe(ALL_RED, () => [lampsFor("green", true), ...lamps(ALL_RED).slice(1)], 2_000);
    // A green stuck on M conflicts with nothing here (all others red), so the mismatch window decides.
    expect(stuck.fault?.kind).toBe("feedback-mismatch");
    expect(stuck.t).toBe(1_000);
  });

  it("latches conflicting lamps in the field after 300 ms", () => {
    const result = observe(MAIN, () => lamps(["green", "green", "walk", "dont-walk"]), 2_000);
    expect(result.fault?.kind).toBe("observed-conflict");
    expect(result.t).toBe(300);
  });

  it("does not mistake flashing for a dark group", () => {
    const flashing: Aspect[] = ["red-flash", "red-flash", "dark", "dark"];
    const result = observe(flashing, (t) => lamps(flashing, t % 1100 < 550), 10_000, true);
    expect(result.fault).toBeNull();
  });
});
