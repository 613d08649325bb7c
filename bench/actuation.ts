import { spawnSync } from "node:child_process";
import { loadDemand } from "../gateway/config/load-demand.js";
import {
  type LoadedPlan,
  loadCorridor,
  loadIntersection,
  loadPlan,
  planFileFor,
} from "../gateway/config/load.js";
import { median } from "../simulators/traffic/fcd-figures.js";
import { runTraffic, type TrafficReport } from "../simulators/traffic/traffic-run.js";
import type { BenchResult } from "./stats.js";

/**
 * Does actuation serve the side streets better without costing Main St (issue 18)? The example
 * corridor's off-peak plan at the off-peak demand in SUMO, actuated (as the plan file is: its side and
 * left stages served on the stop-bar loops' calls, gapping out) against the same plan made fixed-time
 * (every stage's `actuated` stripped, in memory: the same cycle, splits and offsets, every stage
 * served in full every cycle). The same SUMO seeds for both, the push buttons pressed alike
 * (traffic-run's seeded presses, 60 an hour per button). The figures, each the median across seeds
 * of the run's mean: side-street delay per vehicle (SUMO's time lost, vehicles that entered from a
 * side street), their wait at that side street's signal, Main St stops per vehicle (corridor-long
 * trips, both directions) and the travel times; with the ratio actuated / fixed.
 * `GREENWAVE_ACTUATION_SEEDS` (default 3) and `GREENWAVE_ACTUATION_DURATION` (s, default 1800).
 */
const PLAN = "off-peak";
const DEMAND = "config/demand/off-peak.yaml";

/** The same plan with no stage actuated: what the plan would be as a fixed-time plan. */
export function fixedTimeVariant(plan: LoadedPlan): LoadedPlan {
  const intersections = Object.fromEntries(
    Object.entries(plan.raw.intersections).map(([id, part]) => [
      id,
      {
        ...part,
        stages: part.stages.map((stage) => {
          const { actuated: _actuated, ...fixed } = stage;
          return fixed;
        }),
      },
    ]),
  );
  return { ...plan, raw: { ...plan.raw, intersections } };
}

interface Figures {
  readonly sideDelayS: number;
  readonly sideWaitS: number;
  readonly sideTravelS: number;
  readonly sideVehicles: number;
  readonly mainStops: number;
  readonly mainStopsDownstream: number;
  readonly mainTravelS: number;
  readonly mainDelayS: number;
  readonly mainVehicles: number;
}

function figuresOf(r: TrafficReport): Figures {
  return {
    sideDelayS: r.sideStreets.meanDelayS,
    sideWaitS: r.sideStreets.meanApproachWaitS,
    sideTravelS: r.sideStreets.meanTravelTimeS,
    sideVehicles: r.sideStreets.vehicles,
    mainStops: r.mainStreet.stopsPerVehicle,
    mainStopsDownstream: r.mainStreet.stopsPerVehicleDownstream,
    mainTravelS: r.mainStreet.meanTravelTimeS,
    mainDelayS: r.mainStreet.meanDelayS,
    mainVehicles: r.mainStreet.vehicles,
  };
}

export async function benchActuation(): Promise<BenchResult[]> {
  if (spawnSync("sumo", ["--version"]).status !== 0) {
    process.stdout.write("actuation: sumo is not installed (Debian package sumo): skipped\n");
    return [];
  }
  const seeds = Number(process.env.GREENWAVE_ACTUATION_SEEDS ?? 3);
  const durationS = Number(process.env.GREENWAVE_ACTUATION_DURATION ?? 1800);
  const corridor = loadCorridor("config/corridor.yaml");
  const actuated = loadPlan(planFileFor(corridor, PLAN));
  const demand = loadDemand(DEMAND, corridor);
  const intersections = [...corridor.intersectionFiles.values()].map((file) => loadIntersection(file));
  const variants = [
    { name: "actuated", plan: actuated },
    { name: "fixed-time", plan: fixedTimeVariant(actuated) },
  ] as const;
  const reports = new Map<string, TrafficReport[]>();
  for (const variant of variants) {
    const list: TrafficReport[] = [];
    for (let seed = 1; seed <= seeds; seed++) {
      process.stdout.write(`  actuation: ${variant.name}, seed ${seed}…\n`);
      const report = await runTraffic({
        corridor,
        intersections,
        plan: variant.plan,
        demand,
        durationS,
        seed,
      });
      if (report.safety.faults.length > 0 || report.safety.collisions > 0)
        process.stdout.write(
          `  actuation: ${variant.name}, seed ${seed}: ${report.safety.faults.length} faults, ${report.safety.collisions} collisions: ${report.safety.faults.join("; ")}\n`,
        );
      list.push(report);
    }
    reports.set(variant.name, list);
  }
  const figures = (name: string) => (reports.get(name) ?? []).map(figuresOf);
  const med = (name: string, key: keyof Figures) => median(figures(name).map((f) => f[key]));
  const ratio = (key: keyof Figures) => {
    const fixed = med("fixed-time", key);
    return fixed > 0 ? med("actuated", key) / fixed : Number.NaN;
  };
  const rows: { label: string; key: keyof Figures; unit: string }[] = [
    { label: "side-street delay per vehicle (time lost)", key: "sideDelayS", unit: "s" },
    { label: "side-street wait at its signal (stopped)", key: "sideWaitS", unit: "s" },
    { label: "side-street travel time", key: "sideTravelS", unit: "s" },
    { label: "Main St stops per vehicle (corridor-long)", key: "mainStops", unit: "" },
    { label: "Main St stops per vehicle after the first light", key: "mainStopsDownstream", unit: "" },
    { label: "Main St travel time (corridor-long)", key: "mainTravelS", unit: "s" },
    { label: "Main St delay per vehicle (time lost)", key: "mainDelayS", unit: "s" },
  ];
  const f2 = (n: number) => n.toFixed(2);
  process.stdout.write(
    `\n  actuation (SUMO, ${PLAN} plan at ${PLAN} demand, ${durationS} s × ${seeds} seeds, medians across seeds):\n` +
      `  ${"figure".padEnd(48)} ${"actuated".padStart(9)} ${"fixed".padStart(9)} ${"ratio".padStart(6)}\n` +
      rows
        .map(
          (r) =>
            `  ${r.label.padEnd(48)} ${`${f2(med("actuated", r.key))}${r.unit}`.padStart(9)} ${`${f2(med("fixed-time", r.key))}${r.unit}`.padStart(9)} ${f2(ratio(r.key)).padStart(6)}`,
        )
        .join("\n") +
      "\n\n",
  );
  const result = (
    variant: (typeof variants)[number]["name"],
    key: keyof Figures,
    title: string,
    unit: string,
  ) => {
    const list = reports.get(variant) ?? [];
    const values = figures(variant).map((f) => f[key]);
    const sorted = [...values].sort((a, b) => a - b);
    return {
      name: `actuation (SUMO, ${PLAN} at ${PLAN} demand, ${durationS} s × ${seeds} seeds): ${title}, ${variant}`,
      unit,
      median: median(values),
      p99: sorted.at(-1) ?? 0,
      max: sorted.at(-1) ?? 0,
      samples: values.length,
      extra: {
        actuatedOverFixed: ratio(key),
        perSeed: values.map(f2).join(" "),
        sideDelayS: med(variant, "sideDelayS"),
        sideWaitS: med(variant, "sideWaitS"),
        sideTravelS: med(variant, "sideTravelS"),
        sideVehicles: med(variant, "sideVehicles"),
        mainStops: med(variant, "mainStops"),
        mainStopsDownstream: med(variant, "mainStopsDownstream"),
        mainTravelS: med(variant, "mainTravelS"),
        mainVehicles: med(variant, "mainVehicles"),
        faults: list.reduce((n, r) => n + r.safety.faults.length, 0),
        collisions: list.reduce((n, r) => n + r.safety.collisions, 0),
        teleports: list.reduce((n, r) => n + r.safety.teleports, 0),
        wallS: median(list.map((r) => r.wallMs / 1000)),
        detectorReadS: median(list.map((r) => r.detectorReads.wallMs / 1000)),
        sumo: list[0]?.sumoVersion ?? "?",
      },
    };
  };
  return [
    result("actuated", "sideDelayS", "side-street delay per vehicle", "s"),
    result("fixed-time", "sideDelayS", "side-street delay per vehicle", "s"),
    result("actuated", "mainStops", "Main St stops per vehicle", "stops"),
    result("fixed-time", "mainStops", "Main St stops per vehicle", "stops"),
  ];
}
