import { existsSync } from "node:fs";
import type { Issue } from "../core/issues.js";
import type { IntersectionPlan } from "../core/model.js";
import { secondsToMs } from "../core/units.js";
import { planSite, type ProgressionInput, type ProgressionSite } from "../core/progression/index.js";
import { collect, emptyReport } from "./check-report.js";
import { ConfigError, displayPath } from "./errors.js";
import { loadMembers } from "./load-members.js";
import {
  compileIntersectionPlan,
  type LoadedCorridor,
  type LoadedPlan,
  loadCorridor,
  planFileFor,
  readPlanFile,
} from "./load.js";

/**
 * The config side of the green-wave arithmetic: a corridor, its intersections and one plan compiled for
 * each, as the gateways compile it, turned into the core's ProgressionInput — positions from the
 * corridor file's `distanceMeters` (cumulative, in its order), the design speed from its
 * `progressionSpeedKmh`, and each intersection's through group's greens in cycle time from the daily
 * sync point (core/progression/plan-windows.ts).
 */

export interface ProgressionSiteInfo extends ProgressionSite {
  /** The through group's id: the first vehicle group of the coordinated stage. */
  readonly throughGroup: string;
  /** The coordinated stage's id. */
  readonly coordinatedStage: string;
  /** The plan's offset for this intersection and what it refers to. */
  readonly offsetMs: number;
  readonly offsetReference: IntersectionPlan["offsetReference"];
}

export interface CorridorProgression {
  readonly corridor: LoadedCorridor;
  readonly plan: LoadedPlan;
  readonly speedKmh: number;
  readonly input: ProgressionInput;
  /** The input's sites, with what they came from. */
  readonly sites: readonly ProgressionSiteInfo[];
}

/** km/h → m/s */
export function kmhToMps(kmh: number): number {
  return kmh / 3.6;
}

/** Cumulative positions (m) of the corridor's intersections, in its order, from `distanceMeters`. */
export function corridorPositions(corridor: LoadedCorridor): Map<string, number> {
  const positions = new Map<string, number>();
  let at = 0;
  corridor.raw.intersections.forEach((entry, i) => {
    at += i === 0 ? 0 : entry.distanceMeters;
    if (!positions.has(entry.id)) positions.set(entry.id, at);
  });
  return positions;
}

/**
 * Loads a corridor, its intersections and a plan (a plan file, or a plan id of the corridor's plans
 * directory) and builds the progression input. Every problem (an intersection that does not load, a
 * part that does not compile, no design speed, no vehicle group in a coordinated stage) is reported at
 * once, located, as one ConfigError.
 */
export function loadCorridorProgression(
  corridorFile: string,
  planRef: string,
  options: ProgressionOptions = {},
): CorridorProgression {
  const corridor = loadCorridor(corridorFile);
  const plan = readPlanFile(existsSync(planRef) ? planRef : planFileFor(corridor, planRef));
  return corridorProgression(corridor, plan, options);
}

export interface ProgressionOptions {
  /** The design speed, instead of the corridor's progressionSpeedKmh (what if traffic runs at 40 km/h?). */
  readonly speedKmh?: number;
}

/** The progression input of a loaded corridor and plan (see loadCorridorProgression). */
export function corridorProgression(
  corridor: LoadedCorridor,
  plan: LoadedPlan,
  options: ProgressionOptions = {},
): CorridorProgression {
  const report = emptyReport();
  const members = loadMembers(corridor, report);
  const positions = corridorPositions(corridor);
  const speedKmh = options.speedKmh ?? corridor.raw.progressionSpeedKmh;
  if (speedKmh === undefined) {
    report.issues.push(
      ...corridor.yaml.locate([
        {
          path: [],
          message: `corridor ${corridor.raw.id} has no progressionSpeedKmh: the green wave's design speed is needed for its bands (add e.g. "progressionSpeedKmh: 50")`,
        },
      ]),
    );
  }
  const sites: ProgressionSiteInfo[] = [];
  const planIssues: Issue[] = [];
  for (const [id, member] of members) {
    if (!member) continue;
    collect(report, () => {
      const compiled = compileIntersectionPlan(member.intersection, plan, corridor);
      const site = planSite(member.intersection, compiled, positions.get(id) ?? 0);
      if (!site) {
        planIssues.push({
          path: ["intersections", id, "coordinatedStage"],
          message: `plan ${plan.raw.id}, intersection ${id}: coordinated stage ${compiled.stages[compiled.coordinatedStage]?.id} serves no vehicle group, so there is no through group to make a green wave with`,
        });
        return;
      }
      sites.push({
        ...site,
        coordinatedStage: compiled.stages[compiled.coordinatedStage]?.id ?? "",
        offsetMs: compiled.offsetMs,
        offsetReference: compiled.offsetReference,
      });
    });
  }
  report.issues.push(...plan.yaml.locate(planIssues));
  if (report.issues.length > 0) throw new ConfigError(report.issues);
  const cycleMs = secondsToMs(plan.raw.cycleSeconds);
  if (sites.length !== corridor.raw.intersections.length) {
    // loadMembers reports every intersection it could not load; a repeat id is refused by loadCorridor.
    throw new ConfigError(
      corridor.yaml.locate([
        { path: ["intersections"], message: `not every intersection of ${displayPath(corridor.file)} could be used` },
      ]),
    );
  }
  return {
    corridor,
    plan,
    speedKmh: speedKmh as number,
    input: { cycleMs, speedMps: kmhToMps(speedKmh as number), sites },
    sites,
  };
}
