import type { Issue } from "../core/issues.js";
import type { Intersection } from "../core/model.js";
import { checkPlanPart } from "../core/plan.js";
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
