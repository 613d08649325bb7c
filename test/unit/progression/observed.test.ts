import { describe, expect, it } from "vitest";
import {
  corridorBands,
  observedBands,
  type ProgressionInput,
} from "../../../gateway/core/progression/index.js";

const C = 100_000;
const T0 = Date.UTC(2026, 2, 4, 9, 0, 0);

/** A corridor's cycle greens repeated over absolute time from T0: what a log of a steady plan shows. */
function repeated(input: ProgressionInput, cycles: number) {
  return input.sites.map((s) => ({
    id: s.id,
    positionM: s.positionM,
    greens: Array.from({ length: cycles }, (_, k) =>
      s.green.map((w) => {
        const end = w.endMs >= w.startMs ? w.endMs : w.endMs + C;
        return { startMs: T0 + k * C + w.startMs, endMs: T0 + k * C + end };
      }),
    ).flat(),
  }));
}

const input: ProgressionInput = {
  cycleMs: C,
  speedMps: 10,
  sites: [
    { id: "a", positionM: 0, green: [{ startMs: 0, endMs: 40_000 }] },
    { id: "b", positionM: 100, green: [{ startMs: 10_000, endMs: 50_000 }] },
    { id: "c", positionM: 300, green: [{ startMs: 95_000, endMs: 45_000 }] },
  ],
};

describe("observedBands", () => {
  it("a steady plan's log gives the cycle's bands once a cycle, from the right site", () => {
    const bands = corridorBands(input);
    // Two cycles from mid-cycle: neither direction's band is cut by the window's edges.
    const seen = observedBands(repeated(input, 6), input.speedMps, T0 + 2.5 * C, T0 + 4.5 * C);
    expect(seen.forward).toHaveLength(2);
    expect(seen.reverse).toHaveLength(2);
    seen.forward.forEach((b) => {
      expect(b.departEndMs - b.departStartMs).toBeCloseTo(bands.forward.widthMs, 6);
      // Forward departures are at the first site, a.
      expect((b.departStartMs - T0) % C).toBeCloseTo(bands.forward.starts[0]!.atMs, 6);
    });
    seen.reverse.forEach((b) => {
      expect(b.departEndMs - b.departStartMs).toBeCloseTo(bands.reverse.widthMs, 6);
      // Reverse departures are at the last site, c.
      expect((b.departStartMs - T0) % C).toBeCloseTo(bands.reverse.starts[2]!.atMs, 6);
    });
  });

  it("a cut green narrows that cycle's band only; no data counts as red", () => {
    const sites = repeated(input, 6);
    // b's green of the fourth cycle ends 30 s early.
    const b = sites[1]!;
    const cut = b.greens.map((g, k) => (k === 3 ? { ...g, endMs: g.endMs - 30_000 } : g));
    const seen = observedBands([sites[0]!, { ...b, greens: cut }, sites[2]!], 10, T0 + 2 * C, T0 + 4 * C);
    const widths = seen.forward.map((x) => x.departEndMs - x.departStartMs);
    expect(widths[0]).toBeCloseTo(corridorBands(input).forward.widthMs, 6);
    expect(widths[0]).toBeCloseTo(15_000, 6);
    expect(widths[1]).toBeCloseTo(10_000, 6);
    // Only the first two cycles' greens: departures of the last cycle find no data downstream.
    const short = observedBands(
      repeated(input, 6).map((s) => ({ ...s, greens: s.greens.slice(0, 2) })),
      10,
      T0,
      T0 + 6 * C,
    );
    expect(short.forward.every((x) => x.departEndMs <= T0 + 2 * C)).toBe(true);
  });

  it("departures are clipped to [fromMs, toMs)", () => {
    const seen = observedBands(repeated(input, 6), 10, T0 + 2 * C + 5_000, T0 + 2 * C + 8_000);
    expect(seen.forward).toEqual([{ departStartMs: T0 + 2 * C + 5_000, departEndMs: T0 + 2 * C + 8_000 }]);
    expect(observedBands(repeated(input, 6), 10, T0, T0)).toEqual({ forward: [], reverse: [] });
  });

  it("refuses a bad speed or sites out of order", () => {
    expect(() => observedBands([], 0, 0, 1)).toThrow(/speed/);
    expect(() =>
      observedBands(
        [
          { id: "a", positionM: 10, greens: [] },
          { id: "b", positionM: 0, greens: [] },
        ],
        10,
        0,
        1,
      ),
    ).toThrow(/corridor order/);
  });
});
