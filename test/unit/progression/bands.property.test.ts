import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  bestOffsets,
  type BandReport,
  corridorBands,
  type CycleWindow,
  type Direction,
  type ProgressionInput,
} from "../../../gateway/core/progression/index.js";

/** The simulation's grid: a vehicle departs every 0.1 s. */
const H = 100;

const mod = (a: number, m: number) => ((a % m) + m) % m;

/** Is a vehicle at `arrivalMs` (cycle time, any real) inside one of these windows? Written from the definition. */
function green(windows: readonly CycleWindow[], cycleMs: number, arrivalMs: number): boolean {
  return windows.some((w) => {
    if (w.endMs - w.startMs >= cycleMs) return true;
    const length = mod(w.endMs - w.startMs, cycleMs);
    return mod(arrivalMs - w.startMs, cycleMs) < length;
  });
}

/** Milliseconds from the direction's first site (the first listed going forward, the last in reverse). */
function travel(input: ProgressionInput, direction: Direction): number[] {
  const sites = input.sites;
  const origin = direction === "forward" ? sites[0]!.positionM : sites[sites.length - 1]!.positionM;
  return sites.map((s) => (Math.abs(s.positionM - origin) * 1000) / input.speedMps);
}

/** A vehicle leaving the first site at `t` at the design speed: does it find every site green? */
function passes(input: ProgressionInput, tau: readonly number[], t: number): boolean {
  return input.sites.every((s, i) => green(s.green, input.cycleMs, t + tau[i]!));
}

/**
 * The brute-force band: vehicles every 0.1 s over a cycle, each checked at every site. Two neighbours
 * that both pass are in one band unless a vehicle between them is stopped: only a window closing on
 * a departure between them can do that, so the vehicles departing just as each window closes are
 * simulated too. Returns the longest chain of linked vehicles (the whole cycle: cycleMs / H + 1).
 */
function simulatedRun(input: ProgressionInput, direction: Direction): number {
  const c = input.cycleMs;
  const tau = travel(input, direction);
  const n = c / H;
  const pass = Array.from({ length: n }, (_, k) => passes(input, tau, k * H));
  const closings = input.sites.flatMap((s, i) => s.green.map((w) => mod(w.endMs - tau[i]!, c)));
  const linked = (k: number) => {
    if (!pass[k] || !pass[(k + 1) % n]) return false;
    const t = k * H;
    return closings.every((d) => {
      const into = mod(d - t, c);
      return !(into > 0 && into < H) || passes(input, tau, d + 1e-6);
    });
  };
  const links = Array.from({ length: n }, (_, k) => linked(k));
  if (links.every(Boolean)) return n + 1;
  // Longest chain around the circle: start just after a broken link.
  const startAt = links.findIndex((l) => !l) + 1;
  let best = 0;
  let chain = 0;
  for (let j = 0; j < n; j++) {
    const k = (startAt + j) % n;
    if (!pass[k]) {
      chain = 0;
      continue;
    }
    chain++;
    best = Math.max(best, chain);
    if (!links[k]) chain = 0;
  }
  return best;
}

const fraction = fc.integer({ min: 0, max: 1_000_000 }).map((x) => x / 1_000_000);

const inputArb: fc.Arbitrary<ProgressionInput> = fc
  .record({
    cycleTenths: fc.integer({ min: 300, max: 3000 }),
    // Uniform integers scaled (fc.double draws mostly tiny numbers): speeds to 1 mm/s, gaps to 1 cm.
    speedMps: fc.integer({ min: 3000, max: 35_000 }).map((x) => x / 1000),
    sites: fc.array(
      fc.record({
        gapM: fc.integer({ min: 0, max: 120_000 }).map((x) => x / 100),
        windows: fc.array(
          fc.oneof(
            { weight: 9, arbitrary: fc.tuple(fraction, fraction) },
            { weight: 1, arbitrary: fc.constant<[number, number]>([0, 2]) },
          ),
          { minLength: 0, maxLength: 3 },
        ),
      }),
      { minLength: 1, maxLength: 6 },
    ),
  })
  .map(({ cycleTenths, speedMps, sites }) => {
    const cycleMs = cycleTenths * 100;
    let at = 0;
    return {
      cycleMs,
      speedMps,
      sites: sites.map((s, i) => {
        at += i === 0 ? 0 : s.gapM;
        return {
          id: `s${i}`,
          positionM: at,
          // Whole milliseconds, as a plan's are; [0, 2] is a green the whole cycle.
          green: s.windows.map(([a, b]) =>
            b === 2
              ? { startMs: 0, endMs: cycleMs }
              : { startMs: Math.floor(a * cycleMs), endMs: Math.floor(b * cycleMs) },
          ),
        };
      }),
    };
  });

function checkDirection(input: ProgressionInput, report: BandReport, direction: Direction): void {
  const band = report[direction];
  const c = input.cycleMs;
  const run = simulatedRun(input, direction);
  if (run > c / H) {
    expect(band.widthMs).toBe(c);
    return;
  }
  // The width agrees with the simulation within its grid.
  expect(Math.abs(band.widthMs - run * H)).toBeLessThanOrEqual(H + 1e-6);
  if (band.widthMs === 0) {
    expect(band.starts).toEqual([]);
    return;
  }
  // Every simulated vehicle inside the band passes, and the band's starts are one vehicle's passages.
  const tau = travel(input, direction);
  const origin = direction === "forward" ? 0 : input.sites.length - 1;
  const a = band.starts[origin]!.atMs;
  for (let k = 0; k * H < c; k++) {
    const into = mod(k * H - a, c);
    if (into > 1e-3 && into < band.widthMs - 1e-3) expect(passes(input, tau, k * H)).toBe(true);
  }
  input.sites.forEach((s, i) => {
    expect(band.starts[i]!.id).toBe(s.id);
    const want = mod(a + tau[i]! - tau[origin]!, c);
    const diff = Math.abs(band.starts[i]!.atMs - want);
    expect(Math.min(diff, c - diff)).toBeLessThan(1e-3);
  });
}

describe("corridorBands against a simulation of vehicles at the design speed", () => {
  it("the band's width agrees with vehicles departing every 0.1 s, in both directions", () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const report = corridorBands(input);
        checkDirection(input, report, "forward");
        checkDirection(input, report, "reverse");
        expect(report.efficiency).toBeCloseTo(
          (report.forward.widthMs + report.reverse.widthMs) / (2 * input.cycleMs),
          9,
        );
      }),
      { numRuns: 300 },
    );
  });
});

/** The input with each site's green moved later by its shift. */
function shifted(input: ProgressionInput, shifts: readonly number[]): ProgressionInput {
  return {
    ...input,
    sites: input.sites.map((s, i) => ({
      ...s,
      green: s.green.map((w) => ({ startMs: w.startMs + shifts[i]!, endMs: w.endMs + shifts[i]! })),
    })),
  };
}

const sum = (r: BandReport) => r.forward.widthMs + r.reverse.widthMs;

describe("bestOffsets", () => {
  it("never reports less than the current offsets' bandwidth, and its offsets give the bands it reports", () => {
    fc.assert(
      fc.property(
        inputArb,
        fc.constantFrom(1000, 2000, 5000),
        fc.constantFrom(500, 4_000_000),
        (input, resolutionMs, maxNodes) => {
          const search = bestOffsets(input, { resolutionMs, maxNodes });
          expect(sum(search.best)).toBeGreaterThanOrEqual(sum(corridorBands(input)) - 1e-6);
          expect(search.current).toEqual(corridorBands(input));
          expect(search.shifts[0]!.shiftMs).toBe(0);
          const again = corridorBands(
            shifted(
              input,
              search.shifts.map((s) => s.shiftMs),
            ),
          );
          expect(sum(again)).toBeCloseTo(sum(search.best), 6);
          expect(search.best.efficiency).toBeCloseTo(sum(search.best) / (2 * input.cycleMs), 9);
          if (search.exact) expect(search.method).toBe("exhaustive");
        },
      ),
      { numRuns: 60 },
    );
  });

  it("the exhaustive search finds the best of every combination, with the least change among equals", () => {
    const small = fc
      .record({
        cycleS: fc.integer({ min: 10, max: 30 }),
        speedMps: fc.integer({ min: 5000, max: 20_000 }).map((x) => x / 1000),
        sites: fc.array(
          fc.record({
            gapM: fc.integer({ min: 0, max: 30_000 }).map((x) => x / 100),
            start: fraction,
            length: fraction.map((x) => 0.1 + 0.8 * x),
          }),
          { minLength: 2, maxLength: 3 },
        ),
      })
      .map(({ cycleS, speedMps, sites }) => {
        const cycleMs = cycleS * 1000;
        let at = 0;
        return {
          cycleMs,
          speedMps,
          sites: sites.map((s, i) => {
            at += i === 0 ? 0 : s.gapM;
            const startMs = Math.floor(s.start * cycleMs);
            return {
              id: `s${i}`,
              positionM: at,
              green: [{ startMs, endMs: (startMs + Math.floor(s.length * cycleMs)) % cycleMs }],
            };
          }),
        };
      });
    fc.assert(
      fc.property(small, (input) => {
        const c = input.cycleMs;
        const n = input.sites.length;
        let bestSum = -1;
        let bestChange = Number.POSITIVE_INFINITY;
        const shifts = new Array<number>(n).fill(0);
        const walk = (i: number) => {
          if (i === n) {
            const s = sum(corridorBands(shifted(input, shifts)));
            const change = shifts.reduce((a, d) => a + Math.min(d, c - d), 0);
            if (s > bestSum + 1e-6 || (Math.abs(s - bestSum) <= 1e-6 && change < bestChange)) {
              bestSum = s;
              bestChange = change;
            }
            return;
          }
          for (let d = 0; d < c; d += 1000) {
            shifts[i] = d;
            walk(i + 1);
          }
          shifts[i] = 0;
        };
        walk(1);
        const search = bestOffsets(input);
        expect(search.exact).toBe(true);
        expect(sum(search.best)).toBeCloseTo(bestSum, 6);
        expect(search.totalChangeMs).toBe(bestChange);
      }),
      { numRuns: 150 },
    );
  });
});
