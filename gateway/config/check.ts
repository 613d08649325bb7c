import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Intersection } from "../core/model.js";
import { formatSeconds } from "../core/units.js";
import { checkPlanAgainst, checkPlanParts } from "./check-plan.js";
import { attempt, type CheckReport, collect, describePlan, emptyReport, withoutRepeats } from "./check-report.js";
import { ConfigError, displayPath } from "./errors.js";
import { findCorridorFile } from "./find-corridor.js";
import {
  compileIntersectionPlan,
  fileKindOf,
  type LoadedCorridor,
  type LoadedIntersection,
  listPlanFiles,
  loadCorridor,
  loadCorridorOf,
  loadDeviceProfile,
  loadIntersection,
  loadReferenced,
  missingInitialPlan,
  planFileFor,
  readPlanFile,
} from "./load.js";
import { intersectionFileSchema } from "./schema.js";
import { validate } from "./validate.js";
import { readYamlFile } from "./yaml-file.js";

export { type CheckReport, DEFAULT_TICK_MS } from "./check-report.js";

export interface CheckOptions {
  /** The corridor file a plan file is checked against; found from the plan's corridor id if not given. */
  readonly corridor?: string;
}

/**
 * `greenwave config check FILE`: checks a file of any kind, and everything it refers to. A file that
 * breaks its schema stops there; past the schema, every check that does not need another's result
 * runs, so that one run reports every independent problem.
 */
export function checkConfigFile(file: string, options: CheckOptions = {}): CheckReport {
  const report = emptyReport();
  collect(report, () => {
    const kind = fileKindOf(readYamlFile(resolve(file)));
    if (kind === "plan") {
      checkPlanFile(file, options.corridor, report);
    } else if (kind === "device-profile") {
      const { profile } = loadDeviceProfile(file);
      report.checked.push(
        `device profile ${profile.id}: ${profile.outputs} outputs, feedback from ${profile.feedback.source}, ${profile.watchdog ? "host watchdog" : "no watchdog"}`,
      );
    } else if (kind === "corridor") {
      checkCorridor(loadCorridor(file), report);
    } else {
      checkIntersectionFile(file, report);
    }
  });
  return withoutRepeats(report);
}

/** A plan, against its corridor and every intersection of that corridor. */
function checkPlanFile(file: string, corridorFile: string | undefined, report: CheckReport): void {
  const plan = readPlanFile(file);
  const found = attempt(report, () => loadCorridor(corridorFile ?? findCorridorFile(plan)));
  if (!found) {
    checkPlanParts(plan, report);
    return;
  }
  report.checked.push(
    `plan ${plan.raw.id} v${plan.raw.version}: checked against corridor ${found.raw.id} (${displayPath(found.file)})`,
  );
  const members = loadMembers(found, report);
  const targets = new Map([...members].map(([id, m]) => [id, m?.intersection ?? null]));
  checkPlanAgainst(plan, found, targets, report, { foreignParts: true });
}

/**
 * The corridor's intersections by id, each null when its file did not load (its issues are in the
 * report): one broken intersection does not stop the checks of the others.
 */
function loadMembers(corridor: LoadedCorridor, report: CheckReport): Map<string, LoadedIntersection | null> {
  const members = new Map<string, LoadedIntersection | null>();
  corridor.raw.intersections.forEach((entry, i) => {
    if (members.has(entry.id)) return;
    members.set(entry.id, null);
    const file = corridor.intersectionFiles.get(entry.id) as string;
    collect(report, () => {
      const loaded = loadReferenced(corridor.yaml, ["intersections", i, "file"], "intersection file", () =>
        loadIntersection(file),
      );
      if (loaded.raw.id !== entry.id) {
        throw new ConfigError(
          corridor.yaml.locate([
            {
              path: ["intersections", i, "id"],
              message: `${displayPath(file)} defines intersection ${loaded.raw.id}, not ${entry.id}`,
            },
          ]),
        );
      }
      members.set(entry.id, loaded);
    });
  });
  return members;
}

function checkCorridor(corridor: LoadedCorridor, report: CheckReport): void {
  report.checked.push(`corridor ${corridor.raw.id}: ${corridor.raw.intersections.length} intersections`);
  const members = loadMembers(corridor, report);
  for (const [id, loaded] of members) {
    if (!loaded) continue;
    report.checked.push(`intersection ${id}: ${loaded.intersection.groups.length} signal groups`);
    report.issues.push(...missingInitialPlan(loaded, corridor));
  }
  const targets = new Map([...members].map(([id, m]) => [id, m?.intersection ?? null]));
  for (const planFile of listPlanFiles(corridor)) {
    collect(report, () => checkPlanAgainst(readPlanFile(planFile), corridor, targets, report, { foreignParts: true }));
  }
}

/**
 * An intersection file: its own checks, its corridor (which must list it), its initial plan (which
 * must be one of the corridor's) and its part of each of the corridor's plans.
 */
function checkIntersectionFile(file: string, report: CheckReport): void {
  const path = resolve(file);
  const yaml = readYamlFile(path);
  const raw = validate(intersectionFileSchema, yaml);
  const intersection = attempt(report, () => loadIntersection(path));
  const found = attempt(report, () =>
    loadReferenced(yaml, ["corridor"], "corridor file", () => loadCorridor(resolve(dirname(path), raw.corridor))),
  );
  if (!found) return;
  const member = found.intersectionFiles.has(raw.id);
  if (!member) {
    report.issues.push(
      ...yaml.locate([
        {
          path: ["corridor"],
          message: `corridor ${found.raw.id} (${displayPath(found.file)}) does not list intersection ${raw.id}`,
        },
      ]),
    );
  }
  const missing = missingInitialPlan({ file: path, raw, yaml }, found);
  report.issues.push(...missing);
  if (intersection && member && missing.length === 0) {
    report.checked.push(
      `intersection ${raw.id}: ${intersection.intersection.groups.length} signal groups, ${intersection.modules.length} I/O modules, corridor ${found.raw.id}, initial plan ${raw.initialPlan}`,
    );
  }
  // The corridor's plans have no part for an intersection it does not list: saying so for each is noise.
  if (!member) return;
  const targets = new Map<string, Intersection | null>([[raw.id, intersection?.intersection ?? null]]);
  for (const planFile of listPlanFiles(found)) {
    collect(report, () => checkPlanAgainst(readPlanFile(planFile), found, targets, report, { foreignParts: false }));
  }
}

/** `greenwave plan check --intersection FILE PLAN`: PLAN is a plan file or a plan id of the corridor. */
export function checkPlanForIntersection(intersectionFile: string, planRef: string): CheckReport {
  const report = emptyReport();
  collect(report, () => {
    const loaded = loadIntersection(intersectionFile);
    const corridor = loadCorridorOf(loaded);
    const planFile = existsSync(planRef) ? planRef : planFileFor(corridor, planRef);
    // Its part only, as the gateway compiles a plan pushed to it: every problem of the part at once.
    const plan = compileIntersectionPlan(loaded.intersection, readPlanFile(planFile), corridor);
    report.checked.push(describePlan(plan));
    plan.stages.forEach((s) => {
      report.checked.push(
        `  stage ${s.id}: groups ${s.groups.map((g) => loaded.intersection.groups[g]?.id).join(", ")}, split ${formatSeconds(s.splitMs)} (minimum ${formatSeconds(s.minMs)})`,
      );
    });
  });
  return withoutRepeats(report);
}
