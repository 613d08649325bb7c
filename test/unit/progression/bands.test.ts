import { describe, expect, it } from "vitest";
import {
  corridorBands,
  type ProgressionInput,
  ProgressionInputError,
  travelTimes,
} from "../../../gateway/core/progression/index.js";

/** 10 m/s: 100 m is 10 s of travel. */
const SPEED = 10;
const C = 100_000;

const site = (id: string, positionM: number, ...green: [number, number][]) => ({
  id,
  positionM,
  green: green.map(([startMs, endMs]) => ({ startMs, endMs })),
});

describe("corridorBands", () => {
  it("one site: the band is its green, in both directions", () => {
    const r = corridorBands({ cycleMs: C, speedMps: SPEED, sites: [site("a", 0, [10_000, 50_000])] });
    expect(r.forward).toEqual({ direction: "forward", widthMs: 40_000, starts: [{ id: "a", atMs: 10_000 }] });
    expect(r.reverse.widthMs).toBe(40_000);
    expect(r.efficiency).toBeCloseTo(0.4);
  });

  it("two sites offset by exactly the travel time: the whole green progresses one way, the overlap the other", () => {
    // b's green starts 10 s after a's: the travel time from a to b.
    const r = corridorBands({
      cycleMs: C,
      speedMps: SPEED,
      sites: [site("a", 0, [0, 40_000]), site("b", 100, [10_000, 50_000])],
    });
    expect(r.forward.widthMs).toBe(40_000);
    expect(r.forward.starts).toEqual([
      { id: "a", atMs: 0 },
      { id: "b", atMs: 10_000 },
    ]);
    // Westbound: leave b at t, reach a at t + 10 s: t in [10, 50) and t + 10 in [0, 40) → t in [10, 30).
    expect(r.reverse.widthMs).toBe(20_000);
    expect(r.reverse.starts).toEqual([
      { id: "a", atMs: 20_000 },
      { id: "b", atMs: 10_000 },
    ]);
    expect(r.efficiency).toBeCloseTo(60_000 / 200_000);
  });

  it("a green across the cycle's end, and a band across it", () => {
    const r = corridorBands({
      cycleMs: C,
      speedMps: SPEED,
      sites: [site("a", 0, [90_000, 30_000]), site("b", 200, [5_000, 45_000])],
    });
    // Leave a in [90, 130) (mod 100), reach b 20 s later: [110, 150) ∩ [105, 145) → leave a in [90, 125).
    expect(r.forward.widthMs).toBe(35_000);
    expect(r.forward.starts).toEqual([
      { id: "a", atMs: 90_000 },
      { id: "b", atMs: 10_000 },
    ]);
  });

  it("no common green: width 0 and no starts", () => {
    const r = corridorBands({
      cycleMs: C,
      speedMps: SPEED,
      sites: [site("a", 0, [0, 30_000]), site("b", 100, [50_000, 80_000])],
    });
    expect(r.forward).toEqual({ direction: "forward", widthMs: 0, starts: [] });
    expect(r.reverse.widthMs).toBe(0);
    expect(r.efficiency).toBe(0);
  });

  it("a site with no green at all stops every band", () => {
    const r = corridorBands({
      cycleMs: C,
      speedMps: SPEED,
      sites: [site("a", 0, [0, 50_000]), site("b", 100)],
    });
    expect(r.forward.widthMs + r.reverse.widthMs).toBe(0);
  });

  it("green the whole cycle everywhere: the band is the cycle", () => {
    const r = corridorBands({
      cycleMs: C,
      speedMps: SPEED,
      sites: [site("a", 0, [0, C]), site("b", 100, [20_000, 20_000 + C])],
    });
    expect(r.forward.widthMs).toBe(C);
    expect(r.efficiency).toBe(1);
  });

  it("several greens per cycle: the largest contiguous band, the earliest of equal ones", () => {
    // a is green twice a cycle; b (0 m away) too, overlapping each by 10 s and 20 s.
    const r = corridorBands({
      cycleMs: C,
      speedMps: SPEED,
      sites: [site("a", 0, [0, 30_000], [50_000, 80_000]), site("b", 0, [20_000, 60_000], [60_000, 90_000])],
    });
    // a ∩ b = [20, 30) ∪ [50, 80): the band is [50, 80).
    expect(r.forward.widthMs).toBe(30_000);
    expect(r.forward.starts[0]).toEqual({ id: "a", atMs: 50_000 });
    const tie = corridorBands({
      cycleMs: C,
      speedMps: SPEED,
      sites: [site("a", 0, [10_000, 20_000], [60_000, 70_000])],
    });
    expect(tie.forward.starts[0]?.atMs).toBe(10_000);
  });

  it("the band's start at each site is the band's first vehicle passing it", () => {
    const input: ProgressionInput = {
      cycleMs: 80_000,
      speedMps: 50 / 3.6,
      sites: [site("elm", 0, [0, 40_000]), site("oak", 350, [31_000, 65_000])],
    };
    const r = corridorBands(input);
    const travel = travelTimes(input, "forward");
    expect(travel[1]).toBeCloseTo(25_200, 6);
    // Leave elm in [0, 40) ∩ [31 − 25.2, 65 − 25.2) = [5.8, 39.8).
    expect(r.forward.widthMs).toBeCloseTo(34_000, 6);
    expect(r.forward.starts[0]?.atMs).toBeCloseTo(5_800, 6);
    expect(r.forward.starts[1]?.atMs).toBeCloseTo(31_000, 6);
  });

  it("refuses input it cannot work on, naming the problem", () => {
    const good = { cycleMs: C, speedMps: SPEED, sites: [site("a", 0, [0, 10_000])] };
    expect(() => corridorBands({ ...good, cycleMs: 0 })).toThrow(ProgressionInputError);
    expect(() => corridorBands({ ...good, speedMps: -1 })).toThrow(/speed/);
    expect(() => corridorBands({ ...good, sites: [] })).toThrow(/at least one site/);
    expect(() => corridorBands({ ...good, sites: [site("a", 100), site("b", 50)] })).toThrow(
      /corridor order/,
    );
    expect(() => corridorBands({ ...good, sites: [site("a", 0, [Number.NaN, 1])] })).toThrow(/green window/);
  });
});
