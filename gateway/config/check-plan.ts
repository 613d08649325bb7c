import type { Issue } from "../core/issues.js";
import type { Intersection } from "../core/model.js";
import { checkPlanPart } from "../core/plan.js";
import {
  type Band,
  bestOffsets,
  corridorBands,
  type CycleWindow,
  type OffsetSearch,
} from "../core/progression/index.js";
import { mod } from "../core/units.js";
import { loadCorridorProgression } from "./progression-input.js";
import { type CheckReport, collect, describePlan } from "./check-report.js";
import { compileIntersectionPlan, type LoadedCorridor, type LoadedPlan, planHeader, planPartSpec } from "./load.js";

/**
 * Checks a plan file against a corridor. Each part for one of `targets` (an intersection id, and the
 * intersection when its file loaded) is compiled as that intersection's gateway would compile it,
 * which reports every problem of the part at once; a target without a part is a problem; every other
 * part gets the checks that need no intersection, as a gateway loading the whole file does. With
 * `foreignParts`, a part for an intersection the corridor does not list is a problem too.
 */
export function checkPlanAgainst(
  plan: LoadedPlan,
  corridor: LoadedCorridor,
  targets: ReadonlyMap<string, Intersection | null>,
  report: CheckReport,
  options: { readonly foreignParts: boolean },
): void {
  const sameCorridor = plan.raw.corridor === corridor.raw.id;
  const issues: Issue[] = [];
  const compiled = new Set<string>();
  if (!sameCorridor) {
    issues.push({
      path: ["corridor"],
      message: `plan ${plan.raw.id} is for corridor ${plan.raw.corridor}, not ${corridor.raw.id}`,
    });
  } else {
    for (const [id, intersection] of targets) {
      if (!intersection) continue;
      compiled.add(id);
      collect(report, () => {
        report.checked.push(describePlan(compileIntersectionPlan(intersection, plan, corridor)));
      });
    }
  }
  const header = planHeader(plan.raw, corridor.timeReference);
  const listed = [...corridor.intersectionFiles.keys()];
  for (const [id, part] of Object.entries(plan.raw.intersections)) {
    if (compiled.has(id)) continue;
    if (options.foreignParts && sameCorridor && !corridor.intersectionFiles.has(id)) {
      issues.push({
        path: ["intersections", id],
        message: `plan ${plan.raw.id} has a part for intersection ${id}, which corridor ${corridor.raw.id} does not list (it lists ${listed.join(", ")})`,
      });
    }
    issues.push(...checkPlanPart(header, planPartSpec(part), id, ["intersections", id]));
  }
  report.issues.push(...plan.yaml.locate(issues));
}

/** A plan's parts checked without a corridor (none was found): the checks that need no intersection. */
export function checkPlanParts(plan: LoadedPlan, report: CheckReport): void {
  const header = planHeader(plan.raw, { dailySyncMs: 0 });
  const issues = Object.entries(plan.raw.intersections).flatMap(([id, part]) =>
    checkPlanPart(header, planPartSpec(part), id, ["intersections", id]),
  );
  report.issues.push(...plan.yaml.locate(issues));
}

/** How finely `plan check --corridor` searches offsets. */
export const PLAN_CHECK_RESOLUTION_MS = 1000;

/** `greenwave plan check --corridor FILE PLAN`: a plan's green wave, as data (its `--json`). */
export interface PlanBands {
  readonly plan: string;
  readonly version: number;
  readonly corridor: string;
  readonly cycleMs: number;
  readonly speedKmh: number;
  readonly speedMps: number;
  /** In corridor order. */
  readonly sites: readonly {
    readonly id: string;
    readonly positionM: number;
    readonly offsetMs: number;
    readonly offsetReference: string;
    readonly coordinatedStage: string;
    readonly throughGroup: string;
    /** The through group's green, cycle time from the daily sync point. */
    readonly green: readonly CycleWindow[];
  }[];
  readonly forward: Band;
  readonly reverse: Band;
  /** (b1 + b2) / 2C */
  readonly efficiency: number;
  readonly best: {
    readonly objective: string;
    readonly method: OffsetSearch["method"];
    readonly exact: boolean;
    readonly resolutionMs: number;
    readonly evaluations: number;
    /** Each intersection's best offset, and its change from the plan's (in (−C/2, C/2]). */
    readonly offsets: readonly { readonly id: string; readonly offsetMs: number; readonly changeMs: number }[];
    readonly forward: Band;
    readonly reverse: Band;
    readonly efficiency: number;
    readonly totalChangeMs: number;
  };
}

/**
 * A plan's bands on a corridor and the offsets that would widen them: the plan compiled for every
 * intersection of the corridor (every problem reported at once, located), its through greens, the
 * bands at the design speed (the corridor's progressionSpeedKmh, or `speedKmh`), and bestOffsets at
 * PLAN_CHECK_RESOLUTION_MS.
 */
export function planBands(corridorFile: string, planRef: string, options: { readonly speedKmh?: number } = {}): PlanBands {
  const progression = loadCorridorProgression(corridorFile, planRef, options);
  const { input, plan, corridor } = progression;
  const cycleMs = input.cycleMs;
  const now = corridorBands(input);
  const search = bestOffsets(input, { resolutionMs: PLAN_CHECK_RESOLUTION_MS });
  return {
    plan: plan.raw.id,
    version: plan.raw.version,
    corridor: corridor.raw.id,
    cycleMs,
    speedKmh: progression.speedKmh,
    speedMps: input.speedMps,
    sites: progression.sites.map((s) => ({
      id: s.id,
      positionM: s.positionM,
      offsetMs: s.offsetMs,
      offsetReference: s.offsetReference,
      coordinatedStage: s.coordinatedStage,
      throughGroup: s.throughGroup,
      green: s.green,
    })),
    forward: now.forward,
    reverse: now.reverse,
    efficiency: now.efficiency,
    best: {
      objective: search.objective,
      method: search.method,
      exact: search.exact,
      resolutionMs: search.resolutionMs,
      evaluations: search.evaluations,
      offsets: progression.sites.map((s, i) => {
        const shiftMs = search.shifts[i]?.shiftMs ?? 0;
        return {
          id: s.id,
          offsetMs: mod(s.offsetMs + shiftMs, cycleMs),
          changeMs: shiftMs > cycleMs / 2 ? shiftMs - cycleMs : shiftMs,
        };
      }),
      forward: search.best.forward,
      reverse: search.best.reverse,
      efficiency: search.best.efficiency,
      totalChangeMs: search.totalChangeMs,
    },
  };
}

/** Seconds to 0.1 s, as the bands are read: "43.8 s", "0 s". */
function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

function signedSeconds(ms: number): string {
  const s = Math.round(ms / 100) / 10;
  return s === 0 ? "±0 s" : s > 0 ? `+${s} s` : `−${-s} s`;
}

function percent(x: number): string {
  return `${Math.round(x * 1000) / 10} %`;
}

/** The lines `plan check --corridor` prints for one plan. */
export function describePlanBands(b: PlanBands): string[] {
  const first = b.sites[0]?.id ?? "";
  const last = b.sites[b.sites.length - 1]?.id ?? "";
  const at = (band: Band, id: string) => {
    const start = band.starts.find((s) => s.id === id);
    return start ? seconds(start.atMs) : "—";
  };
  const rows = [
    ["intersection", "position", "offset", "through", "green", "forward band at", "reverse band at"],
    ...b.sites.map((s) => [
      s.id,
      `${Math.round(s.positionM)} m`,
      seconds(s.offsetMs),
      s.throughGroup,
      s.green.map((w) => `${seconds(w.startMs).slice(0, -2)}–${seconds(w.endMs)}`).join(", ") || "never",
      at(b.forward, s.id),
      at(b.reverse, s.id),
    ]),
  ];
  const widths = (rows[0] as string[]).map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  const table = rows.map((r) => `  ${r.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join("  ").trimEnd()}`);
  const band = (name: string, route: string, x: Band) =>
    `  ${name} (${route}): bandwidth ${seconds(x.widthMs)}${x.widthMs === 0 ? ` (no vehicle at ${b.speedKmh} km/h passes every green)` : ""}`;
  const best = b.best;
  const sumNow = b.forward.widthMs + b.reverse.widthMs;
  const sumBest = best.forward.widthMs + best.reverse.widthMs;
  const how = best.exact
    ? `exhaustive search, every combination at ${seconds(best.resolutionMs)}`
    : `coordinate ascent at ${seconds(best.resolutionMs)} from the plan's offsets (a local optimum)`;
  return [
    `plan ${b.plan} v${b.version}, corridor ${b.corridor}: cycle ${seconds(b.cycleMs)}, design speed ${b.speedKmh} km/h (${Math.round(b.speedMps * 100) / 100} m/s); green and band starts in cycle time from the daily sync point`,
    ...table,
    band("forward", `${first} → ${last}`, b.forward),
    band("reverse", `${last} → ${first}`, b.reverse),
    `  efficiency (b1 + b2) / 2C: ${percent(b.efficiency)}`,
    `  best offsets (${how}; maximising b1 + b2, ties to the least total offset change; docs/green-wave.md):`,
    `    ${best.offsets.map((o) => `${o.id} ${seconds(o.offsetMs)} (${signedSeconds(o.changeMs)})`).join(", ")}`,
    `    forward ${seconds(best.forward.widthMs)}, reverse ${seconds(best.reverse.widthMs)}, efficiency ${percent(best.efficiency)}: b1 + b2 ${seconds(sumBest)} against ${seconds(sumNow)} with the plan's offsets`,
  ];
}
