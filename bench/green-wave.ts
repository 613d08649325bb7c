import { spawnSync } from "node:child_process";
import { loadDemand } from "../gateway/config/load-demand.js";
import { loadCorridor, loadIntersection, loadPlan, planFileFor } from "../gateway/config/load.js";
import { corridorProgression } from "../gateway/config/progression-input.js";
import { bestOffsets } from "../gateway/core/progression/index.js";
import { runTraffic, type TrafficReport } from "../simulators/traffic/traffic-run.js";
import type { BenchResult } from "./stats.js";

/**
 * Does the green wave move traffic? The example corridor's AM-peak plan against the AM-peak demand in
 * SUMO, beside the same cycle and splits with every offset zero, with random offsets (one set per
 * seed), and with the offsets that maximise the plan's bandwidth (core/progression bestOffsets).
 * Each is run with the same SUMO seeds; the figure compared is eastbound stops per vehicle after the
 * first intersection (the wave's direction), with travel time and delay beside it.
 * `GREENWAVE_GREEN_WAVE_SEEDS` (default 5) and `GREENWAVE_GREEN_WAVE_DURATION` (s, default 1800).
 */
const PLAN = "am-peak";
const DEMAND = "config/demand/am-peak.yaml";

export async function benchGreenWave(): Promise<BenchResult[]> {
  if (spawnSync("sumo", ["--version"]).status !== 0) {
    process.stdout.write("green-wave: sumo is not installed (Debian package sumo): skipped\n");
    return [];
  }
  const seeds = Number(process.env.GREENWAVE_GREEN_WAVE_SEEDS ?? 5);
  const durationS = Number(process.env.GREENWAVE_GREEN_WAVE_DURATION ?? 1800);
  const corridor = loadCorridor("config/corridor.yaml");
  const plan = loadPlan(planFileFor(corridor, PLAN));
  const demand = loadDemand(DEMAND, corridor);
  const intersections = [...corridor.intersectionFiles.values()].map((file) => loadIntersection(file));
  const ids = intersections.map((i) => i.intersection.id);
  const cycleS = plan.raw.cycleSeconds;
  const progression = corridorProgression(corridor, plan);
  const best = bestOffsets(progression.input);
  const bestOffsetsS = new Map(
    best.shifts.map((s) => [
      s.id,
      ((((plan.raw.intersections[s.id]?.offsetSeconds ?? 0) + s.shiftMs / 1000) % cycleS) + cycleS) % cycleS,
    ]),
  );
  const zero = new Map(ids.map((id) => [id, 0]));
  const random = (seed: number) => {
    // A small deterministic generator: the same seed, the same offsets, on every machine.
    let state = (seed * 2_654_435_761) >>> 0;
    const next = () => {
      state = (state * 1_664_525 + 1_013_904_223) >>> 0;
      return state / 2 ** 32;
    };
    return new Map(ids.map((id, i) => [id, i === 0 ? 0 : Math.floor(next() * cycleS)]));
  };
  const run = (offsetsS: ReadonlyMap<string, number> | undefined, seed: number) =>
    runTraffic({ corridor, intersections, plan, demand, durationS, seed, ...(offsetsS ? { offsetsS } : {}) });
  const variants: { name: string; offsets: (seed: number) => ReadonlyMap<string, number> | undefined }[] = [
    { name: "the plan's offsets", offsets: () => undefined },
    { name: "every offset zero", offsets: () => zero },
    { name: "random offsets (one set per seed)", offsets: random },
    { name: "best-bandwidth offsets", offsets: () => bestOffsetsS },
  ];
  const reports = new Map<string, TrafficReport[]>();
  for (const variant of variants) {
    const list: TrafficReport[] = [];
    for (let seed = 1; seed <= seeds; seed++) {
      process.stdout.write(`  green-wave: ${variant.name}, seed ${seed}…\n`);
      list.push(await run(variant.offsets(seed), seed));
    }
    reports.set(variant.name, list);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const stops = (name: string) =>
    mean((reports.get(name) ?? []).map((r) => r.directions.eastbound.stopsPerVehicleDownstream));
  const randomStops = stops("random offsets (one set per seed)");
  return variants.map((variant) => {
    const list = reports.get(variant.name) ?? [];
    const eb = list.map((r) => r.directions.eastbound);
    const wb = list.map((r) => r.directions.westbound);
    const values = eb.map((d) => d.stopsPerVehicleDownstream);
    const sorted = [...values].sort((a, b) => a - b);
    return {
      name: `green wave (SUMO, ${PLAN}, ${durationS} s × ${seeds} seeds): eastbound stops/vehicle after elm, ${variant.name}`,
      unit: "stops",
      median: sorted[Math.floor(sorted.length / 2)] ?? 0,
      p99: sorted.at(-1) ?? 0,
      max: sorted.at(-1) ?? 0,
      samples: values.length,
      extra: {
        mean: mean(values),
        vsRandomPercent: randomStops > 0 ? (1 - mean(values) / randomStops) * 100 : 0,
        ebTravelS: mean(eb.map((d) => d.meanTravelTimeS)),
        ebDelayS: mean(eb.map((d) => d.meanDelayS)),
        ebVehicles: mean(eb.map((d) => d.vehicles)),
        wbStopsDownstream: mean(wb.map((d) => d.stopsPerVehicleDownstream)),
        wbTravelS: mean(wb.map((d) => d.meanTravelTimeS)),
        wbDelayS: mean(wb.map((d) => d.meanDelayS)),
        wallS: mean(list.map((r) => r.wallMs / 1000)),
        offsets: JSON.stringify(list[0]?.plan.offsetsS ?? {}),
        sumo: list[0]?.sumoVersion ?? "?",
      },
    };
  });
}
