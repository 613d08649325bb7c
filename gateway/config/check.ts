import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { Intersection, IntersectionPlan } from "../core/model.js";
import { correctionCycleBound } from "../core/plan.js";
import { formatSeconds } from "../core/units.js";
import { ConfigError, type LocatedIssue } from "./errors.js";
import {
  compileIntersectionPlan,
  fileKindOf,
  type LoadedCorridor,
  listPlanFiles,
  loadCorridor,
  loadCorridorOf,
  loadDeviceProfile,
  loadIntersection,
  loadIntersectionSetup,
  loadPlan,
  loadReferenced,
  planFileFor,
} from "./load.js";
import { readYamlFile } from "./yaml-file.js";

/** The result of checking a file: what was checked (for the operator) and every issue found. */
export interface CheckReport {
  readonly checked: string[];
  readonly issues: LocatedIssue[];
}

/** The tick the gateway runs at; the correction bound allows one tick of quantisation per cycle. */
export const DEFAULT_TICK_MS = 100;

function collect(report: CheckReport, work: () => void): void {
  try {
    work();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    report.issues.push(...error.issues);
  }
}

/** `greenwave config check FILE`: checks a file of any kind, and everything it refers to. */
export function checkConfigFile(file: string): CheckReport {
  const report: CheckReport = { checked: [], issues: [] };
  collect(report, () => {
    const kind = fileKindOf(readYamlFile(resolve(file)));
    if (kind === "plan") {
      const plan = loadPlan(file);
      report.checked.push(
        `plan ${plan.raw.id} v${plan.raw.version}: ${Object.keys(plan.raw.intersections).length} intersection parts`,
      );
    } else if (kind === "device-profile") {
      const { profile } = loadDeviceProfile(file);
      report.checked.push(
        `device profile ${profile.id}: ${profile.outputs} outputs, feedback from ${profile.feedback.source}, ${profile.watchdog ? "host watchdog" : "no watchdog"}`,
      );
    } else if (kind === "corridor") {
      checkCorridor(loadCorridor(file), report);
    } else {
      const setup = loadIntersectionSetup(file);
      const { intersection } = setup.intersection;
      report.checked.push(
        `intersection ${intersection.id}: ${intersection.groups.length} signal groups, ${setup.intersection.modules.length} I/O modules, corridor ${setup.corridor.raw.id}, initial plan ${setup.initialPlan.planId}`,
      );
      for (const planFile of listPlanFiles(setup.corridor)) {
        collect(report, () => {
          const plan = compileIntersectionPlan(intersection, loadPlan(planFile), setup.corridor);
          report.checked.push(describePlan(plan));
        });
      }
    }
  });
  return report;
}

function checkCorridor(corridor: LoadedCorridor, report: CheckReport): void {
  report.checked.push(`corridor ${corridor.raw.id}: ${corridor.raw.intersections.length} intersections`);
  const intersections: Intersection[] = [];
  for (const [id, file] of corridor.intersectionFiles) {
    collect(report, () => {
      const entry = corridor.raw.intersections.findIndex((e) => e.id === id);
      const loaded = loadReferenced(corridor.yaml, ["intersections", entry, "file"], "intersection file", () =>
        loadIntersection(file),
      );
      if (loaded.raw.id !== id) {
        throw new ConfigError(
          corridor.yaml.locate([
            { path: ["intersections"], message: `${file} defines intersection ${loaded.raw.id}, not ${id}` },
          ]),
        );
      }
      intersections.push(loaded.intersection);
      report.checked.push(`intersection ${id}: ${loaded.intersection.groups.length} signal groups`);
    });
  }
  for (const planFile of listPlanFiles(corridor)) {
    collect(report, () => {
      const plan = loadPlan(planFile);
      const unknown = Object.keys(plan.raw.intersections).filter((id) => !corridor.intersectionFiles.has(id));
      if (unknown.length > 0) {
        throw new ConfigError(
          plan.yaml.locate([
            {
              path: ["intersections", unknown[0] as string],
              message: `plan ${plan.raw.id} has parts for intersections not in corridor ${corridor.raw.id}: ${unknown.join(", ")}`,
            },
          ]),
        );
      }
      for (const intersection of intersections) {
        collect(report, () => {
          report.checked.push(describePlan(compileIntersectionPlan(intersection, plan, corridor)));
        });
      }
    });
  }
}

/** `greenwave plan check --intersection FILE PLAN`: PLAN is a plan file or a plan id of the corridor. */
export function checkPlanForIntersection(intersectionFile: string, planRef: string): CheckReport {
  const report: CheckReport = { checked: [], issues: [] };
  collect(report, () => {
    const loaded = loadIntersection(intersectionFile);
    const corridor = loadCorridorOf(loaded);
    const planFile = existsSync(planRef) ? planRef : planFileFor(corridor, planRef);
    const plan = compileIntersectionPlan(loaded.intersection, loadPlan(planFile), corridor);
    report.checked.push(describePlan(plan));
    plan.stages.forEach((s) => {
      report.checked.push(
        `  stage ${s.id}: groups ${s.groups.map((g) => loaded.intersection.groups[g]?.id).join(", ")}, split ${formatSeconds(s.splitMs)} (minimum ${formatSeconds(s.minMs)})`,
      );
    });
  });
  return report;
}

function describePlan(plan: IntersectionPlan): string {
  const c = plan.correction;
  const correction =
    c.mode === "dwell"
      ? `dwell up to ${formatSeconds(c.maxDwellMs)}`
      : `shortway +${formatSeconds(c.maxLengthenMs)}/−${formatSeconds(c.maxShortenMs)}`;
  return `plan ${plan.planId} v${plan.version} at ${plan.intersectionId}: cycle ${formatSeconds(plan.cycleMs)}, offset ${formatSeconds(plan.offsetMs)} (${plan.offsetReference} of ${plan.stages[plan.coordinatedStage]?.id}), ${plan.stages.length} stages, ${correction}, in step within ${correctionCycleBound(plan, DEFAULT_TICK_MS)} cycles of a switch`;
}
