import type { Command } from "commander";
import { runTraffic, type TrafficReport } from "../../simulators/traffic/traffic-run.js";
import { loadDemand } from "../config/load-demand.js";
import { loadCorridor, loadIntersection, loadPlan, planFileFor } from "../config/load.js";
import { existsSync } from "node:fs";
import { EXAMPLE_CORRIDOR } from "./demo.js";
import { UsageError } from "./usage-error.js";

interface TrafficOptions {
  corridor: string;
  plan: string;
  demand: string;
  duration: string;
  warmup?: string;
  seed: string;
  json?: boolean;
  gui?: boolean;
}

function wholeNumber(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max)
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got "${value}"`);
  return n;
}

/**
 * `greenwave sim traffic`: the corridor's controllers driving SUMO's signals in one process, on a
 * virtual clock stepped with SUMO, much faster than real time; prints what traffic did
 * (simulators/traffic/traffic-run.ts, docs/traffic-simulation.md).
 */
export function registerSimTraffic(sim: Command): void {
  sim
    .command("traffic")
    .description(
      "run the corridor's controllers against SUMO (microscopic traffic simulation), faster than real time, and print per direction vehicles, travel time, stops per vehicle and delay, and per intersection the arrivals on green",
    )
    .option("--corridor <file>", "corridor file", EXAMPLE_CORRIDOR)
    .requiredOption("--plan <plan>", "a plan file, or a plan id from the corridor's plans directory")
    .requiredOption("--demand <file>", "a demand file (kind: demand): vehicles per hour and turning ratios")
    .option("--duration <seconds>", "simulated seconds measured, after the warm-up", "3600")
    .option(
      "--warmup <seconds>",
      "simulated seconds before measuring (default: start-up, three cycles and two minutes)",
    )
    .option("--seed <n>", "SUMO's random seed and the demand's", "1")
    .option("--json", "print the figures as JSON")
    .option("--gui", "open sumo-gui (needs a display)")
    .action(async (options: TrafficOptions) => {
      const corridor = loadCorridor(options.corridor);
      const plan = loadPlan(existsSync(options.plan) ? options.plan : planFileFor(corridor, options.plan));
      const demand = loadDemand(options.demand, corridor);
      const intersections = [...corridor.intersectionFiles.values()].map((file) => loadIntersection(file));
      if (options.gui && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY)
        throw new UsageError("--gui needs a display (DISPLAY or WAYLAND_DISPLAY is not set)");
      const report = await runTraffic({
        corridor,
        intersections,
        plan,
        demand,
        durationS: wholeNumber(options.duration, "--duration", 60, 43_200),
        ...(options.warmup === undefined
          ? {}
          : { warmupS: wholeNumber(options.warmup, "--warmup", 0, 7200) }),
        seed: wholeNumber(options.seed, "--seed", 0, 2_147_483_647),
        gui: options.gui === true,
        onProgress: options.json
          ? undefined
          : (s) => process.stderr.write(`\r  simulated ${Math.round(s)} s`),
      });
      if (!options.json) process.stderr.write("\n");
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : describeReport(report));
      if (report.safety.faults.length > 0 || report.safety.collisions > 0) process.exitCode = 1;
    });
}

const pct = (share: number | null) => (share === null ? "—" : `${Math.round(share * 100)} %`);

export function describeReport(r: TrafficReport): string {
  const lines = [
    `plan ${r.plan.id} v${r.plan.version} (offsets ${Object.entries(r.plan.offsetsS)
      .map(([id, s]) => `${id} ${s} s`)
      .join(", ")}), seed ${r.seed}, ${r.sumoVersion}`,
    `measured ${r.durationS} s after ${r.warmupS} s of warm-up; ${(r.wallMs / 1000).toFixed(1)} s of wall time`,
    "",
    "  direction   vehicles  travel time  stops/veh after the first light  stops/veh  delay",
  ];
  for (const [name, d] of Object.entries(r.directions))
    lines.push(
      `  ${name.padEnd(10)}  ${String(d.vehicles).padStart(8)}  ${d.meanTravelTimeS.toFixed(1).padStart(9)} s  ${d.stopsPerVehicleDownstream.toFixed(2).padStart(31)}  ${d.stopsPerVehicle.toFixed(2).padStart(9)}  ${d.meanDelayS.toFixed(1).padStart(4)} s`,
    );
  lines.push("", "  arrivals on green (corridor-long trips, the through group):");
  for (const i of r.intersections)
    lines.push(
      `  ${i.id.padEnd(10)}  eastbound ${pct(i.arrivalsOnGreen.eastbound).padStart(5)}  westbound ${pct(i.arrivalsOnGreen.westbound).padStart(5)}`,
    );
  lines.push(
    "",
    `  safety: ${r.safety.faults.length === 0 ? "no fault latched" : `FAULTS: ${r.safety.faults.join("; ")}`}, ${r.safety.collisions} collisions, ${r.safety.teleports} teleports`,
  );
  return `${lines.join("\n")}\n`;
}
