import { loadCorridorProgression } from "../gateway/config/progression-input.js";
import { bestOffsets, corridorBands, type ProgressionInput } from "../gateway/core/progression/index.js";
import { type BenchResult, elapsedMs, summarize } from "./stats.js";

/**
 * What the green-wave arithmetic costs (docs/green-wave.md): corridorBands on the example corridor's
 * AM peak (the console computes it per redraw), bestOffsets on it (`plan check --corridor`), on random
 * 4-intersection corridors at the longest cycle (300 s, the exhaustive search's worst), and on the
 * largest corridor the files allow (256 intersections: coordinate ascent). Random corridors come from a
 * fixed seed, so that runs compare.
 */
function randomCorridor(seed: number, sites: number, cycleMs: number): ProgressionInput {
  let s = seed;
  const next = () => {
    s = (s * 1_103_515_245 + 12_345) % 2_147_483_648;
    return s / 2_147_483_648;
  };
  let at = 0;
  return {
    cycleMs,
    speedMps: 8 + next() * 10,
    sites: Array.from({ length: sites }, (_, i) => {
      at += i === 0 ? 0 : 100 + next() * 600;
      const start = Math.floor(next() * cycleMs);
      const length = Math.floor(cycleMs * (0.3 + next() * 0.4));
      return { id: `s${i}`, positionM: at, green: [{ startMs: start, endMs: (start + length) % cycleMs }] };
    }),
  };
}

function timed(runs: number, work: (i: number) => unknown): number[] {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    work(i);
    samples.push(elapsedMs(t));
  }
  return samples;
}

export function benchProgression(): BenchResult[] {
  const am = loadCorridorProgression("config/corridor.yaml", "am-peak").input;
  const bands = timed(2000, () => corridorBands(am)).map((ms) => ms * 1000);
  const amSearch = timed(20, () => bestOffsets(am));
  let worstNodes = 0;
  let exact = 0;
  const four = timed(10, (i) => {
    const search = bestOffsets(randomCorridor(i + 1, 4, 300_000));
    worstNodes = Math.max(worstNodes, search.evaluations);
    if (search.exact) exact++;
  });
  let rounds = "";
  const large = timed(3, (i) => {
    rounds = bestOffsets(randomCorridor(i + 101, 256, 300_000)).method;
  });
  return [
    summarize("progression: corridorBands, am-peak (4 intersections)", "us", bands),
    summarize("progression: bestOffsets, am-peak (exhaustive at 1 s)", "ms", amSearch),
    summarize("progression: bestOffsets, random 4 intersections, 300 s cycle", "ms", four, {
      worstEvaluations: worstNodes,
      exact: `${exact}/10`,
    }),
    summarize("progression: bestOffsets, random 256 intersections, 300 s cycle", "ms", large, {
      method: rounds,
    }),
  ];
}
