import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Intersection } from "../core/model.js";
import { formatSeconds } from "../core/units.js";
import { checkPlanAgainst, checkPlanParts } from "./check-plan.js";
import { attempt, type CheckReport, collect, describePlan, emptyReport, withoutRepeats } from "./check-report.js";
import { displayPath, type LocatedIssue } from "./errors.js";
import { findCorridorFile } from "./find-corridor.js";
import { loadMembers } from "./load-members.js";
import {
  compileIntersectionPlan,
  fileKindOf,
  type LoadedCorridor,
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
import { loadSchedule, scheduleFromRaw } from "./load-schedule.js";
import { findDemandCorridor, loadDemand } from "./load-demand.js";
import { changeRow, describeChange, nextChanges } from "./schedule-changes.js";
import { scheduleFileSchema } from "./schedule-schema.js";
import { intersectionFileSchema } from "./schema.js";
import { validate } from "./validate.js";
import { keyringFileSchema } from "./keyring-schema.js";
import { compileKeyring } from "./keyring.js";
import { readYamlFile } from "./yaml-file.js";

export { type CheckReport, DEFAULT_TICK_MS } from "./check-report.js";

export interface CheckOptions {
  /** The corridor file a plan or schedule file is checked against; found from its corridor id if not given. */
  readonly corridor?: string;
  /** Now, for a schedule's next changes (default: the clock). */
  readonly nowMs?: number;
}

/** How many of a schedule's coming changes `config check` lists. */
export const NEXT_CHANGES_LISTED = 10;

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
    } else if (kind === "schedule") {
      checkScheduleFile(file, options, report);
    } else if (kind === "demand") {
      const corridor = loadCorridor(options.corridor ?? findDemandCorridor(file));
      const demand = loadDemand(file, corridor);
      report.checked.push(
        `demand ${demand.raw.id}: corridor ${corridor.raw.id}, ${demand.mainStreet.eastbound} veh/h eastbound, ${demand.mainStreet.westbound} veh/h westbound at the ends`,
      );
    } else if (kind === "keyring") {
      checkKeyringFile(file, report);
    } else {
      checkIntersectionFile(file, report);
    }
  });
  return withoutRepeats(report);
}

/** A keyring (core/corridor/keyring.ts): its shape and its keys, as every gateway will compile them. */
function checkKeyringFile(file: string, report: CheckReport): void {
  const yaml = readYamlFile(resolve(file));
  const raw = validate(keyringFileSchema, yaml);
  const compiled = compileKeyring(raw, raw.corridor);
  if (!compiled.ok) {
    report.issues.push(...yaml.locate(compiled.issues));
    return;
  }
  const k = compiled.value;
  report.checked.push(
    `keyring v${k.version} of corridor ${k.corridor}: ${k.keys.length} key${k.keys.length === 1 ? "" : "s"} (${k.keys.map((key) => key.name).join(", ") || "none"}), ${k.revoked.length} revoked, threshold ${k.threshold}; digest ${k.digest.slice(0, 12)} (greenwave keys sign signs it)`,
  );
}

/** A plan, against its corridor and every intersection of that corridor. */
function checkPlanFile(file: string, corridorFile: string | undefined, report: CheckReport): void {
  const plan = readPlanFile(file);
  const found = attempt(report, () => loadCorridor(corridorFile ?? findCorridorFile(plan)));
  if (!found) {
    checkPlanParts(plan, report);
    return;
  }
  const before = report.issues.length;
  const members = loadMembers(found, report);
  const targets = new Map([...members].map(([id, m]) => [id, m?.intersection ?? null]));
  checkPlanAgainst(plan, found, targets, report, { foreignParts: true });
  // "ok" only for a plan that passed: a failing one says where it was checked with its problems.
  if (report.issues.length === before)
    report.checked.push(
      `plan ${plan.raw.id} v${plan.raw.version}: checked against corridor ${found.raw.id} (${displayPath(found.file)})`,
    );
}

/**
 * A schedule, against its corridor (found as a plan's is): its calendar and every plan it names; then
 * its next changes, for the operator to see that it does what was meant.
 */
function checkScheduleFile(file: string, options: CheckOptions, report: CheckReport): void {
  const yaml = readYamlFile(resolve(file));
  const raw = validate(scheduleFileSchema, yaml);
  const member = { file: yaml.file, raw, yaml };
  const corridor = attempt(report, () => loadCorridor(options.corridor ?? findCorridorFile(member, "schedule")));
  if (!corridor) {
    // No corridor, no time zone or plans: the calendar's own rules can still be checked.
    const alone = scheduleFromRaw(raw, "UTC");
    if ("issues" in alone) report.issues.push(...yaml.locate(alone.issues));
    return;
  }
  report.notes.push(...fixedOffsetNote(corridor));
  const loaded = attempt(report, () => loadSchedule(file, corridor));
  if (!loaded) return;
  const { schedule } = loaded;
  const plans = [...loaded.plans.keys()];
  report.checked.push(
    `schedule ${schedule.id} v${schedule.version}: corridor ${corridor.raw.id} (${displayPath(corridor.file)}), time zone ${zoneLabel(corridor, schedule.timeZone)}, ${Object.keys(schedule.dayPlans).length} day plans, ${schedule.calendar.length} calendar rules, plans ${plans.length > 0 ? plans.join(", ") : "none"}; next changes:`,
  );
  const changes = nextChanges(schedule, options.nowMs ?? Date.now(), NEXT_CHANGES_LISTED);
  for (const change of changes) report.checked.push(`  ${describeChange(changeRow(schedule, change))}`);
  if (changes.length === 0) report.checked.push("  none: the schedule runs one action all year");
}

function zoneLabel(corridor: LoadedCorridor, zone: string): string {
  const t = corridor.raw.timeReference;
  return t.timeZone === undefined ? `${zone} (the corridor's fixed offset ${t.utcOffset ?? "+00:00"})` : zone;
}

/** A corridor on a fixed UTC offset: its sync point and its schedules do not follow daylight-saving time. */
function fixedOffsetNote(corridor: LoadedCorridor): LocatedIssue[] {
  const t = corridor.raw.timeReference;
  if (t.timeZone !== undefined) return [];
  return corridor.yaml.locate([
    {
      path: t.utcOffset === undefined ? ["timeReference"] : ["timeReference", "utcOffset"],
      message: `${t.utcOffset === undefined ? "no time zone: the corridor runs at the fixed offset +00:00" : "utcOffset is a fixed offset"}: name the corridor's time zone (timeZone: Europe/Berlin) so that its sync point and schedules follow daylight-saving time`,
    },
  ]);
}

function checkCorridor(corridor: LoadedCorridor, report: CheckReport): void {
  report.checked.push(`corridor ${corridor.raw.id}: ${corridor.raw.intersections.length} intersections`);
  report.notes.push(...fixedOffsetNote(corridor));
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
      `intersection ${raw.id}: ${intersection.intersection.groups.length} signal groups, ${intersection.modules.length} I/O modules, ${detectorCount(intersection.detectorWiring.length)}corridor ${found.raw.id}, initial plan ${raw.initialPlan}`,
    );
  }
  // The corridor's plans have no part for an intersection it does not list: saying so for each is noise.
  if (!member) return;
  const targets = new Map<string, Intersection | null>([[raw.id, intersection?.intersection ?? null]]);
  for (const planFile of listPlanFiles(found)) {
    collect(report, () => checkPlanAgainst(readPlanFile(planFile), found, targets, report, { foreignParts: false }));
  }
}

/** "3 detectors, " (nothing without detectors: the line reads as before). */
function detectorCount(n: number): string {
  if (n === 0) return "";
  return n === 1 ? "1 detector, " : `${n} detectors, `;
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
