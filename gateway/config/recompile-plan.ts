import type { Checked } from "../core/issues.js";
import type { Intersection, IntersectionPlan } from "../core/model.js";
import { type CorrectionSpec, compilePlan, PLAN_LIMITS } from "../core/plan.js";

/**
 * A compiled plan compiled again for a changed intersection configuration (a SIGHUP reload): the same
 * plan — id, version, content digest, cycle, offset, splits, correction — with everything that depends
 * on the groups' timings (each stage's minimum, the offset's reference position) computed afresh, and
 * every check of `compilePlan` run against the new timings and conflicts (a split now too short for a
 * longer yellow, two groups of a stage no longer permissive: refused with the plan's issues).
 *
 * Works from the compiled plan itself, so it serves whatever plan is in force — configured, pushed by
 * the corridor or handed over by a schedule — without its file. `running` and `reloaded` must have the
 * same groups in the same order (reload-diff.ts refuses anything else).
 */
export function recompilePlan(
  plan: IntersectionPlan,
  running: Intersection,
  reloaded: Intersection,
): Checked<IntersectionPlan> {
  const sameGroups =
    running.groups.length === reloaded.groups.length &&
    running.groups.every((g, i) => g.id === reloaded.groups[i]?.id && g.kind === reloaded.groups[i]?.kind);
  if (!sameGroups || plan.intersectionId !== running.id || reloaded.id !== running.id)
    return {
      ok: false,
      issues: [{ path: [], message: `plan ${plan.planId} v${plan.version} is not for these groups of ${reloaded.id}` }],
    };
  const groupId = (g: number) => running.groups[g]?.id ?? `#${g}`;
  const compiled = compilePlan(
    reloaded,
    {
      planId: plan.planId,
      version: plan.version,
      cycleMs: plan.cycleMs,
      dailySyncMs: plan.dailySyncMs,
      ...(plan.timeZone === undefined ? {} : { timeZone: plan.timeZone }),
      ...(plan.pattern === undefined ? {} : { pattern: plan.pattern }),
    },
    {
      offsetMs: plan.offsetMs,
      offsetReference: plan.offsetReference,
      coordinatedStage: plan.stages[plan.coordinatedStage]?.id ?? "",
      correction: correctionSpec(plan),
      stages: plan.stages.map((stage) => ({
        id: stage.id,
        groups: stage.groups.map(groupId),
        splitMs: stage.splitMs,
        ...(stage.actuation === undefined ? {} : { actuated: stage.actuation }),
      })),
    },
  );
  if (!compiled.ok) return compiled;
  // The correction as compiled the first time, to the millisecond (its percentages are rounded to ms).
  return {
    ok: true,
    value: {
      ...compiled.value,
      correction: plan.correction,
      ...(plan.digest === undefined ? {} : { digest: plan.digest }),
    },
  };
}

/** The compiled correction as the percentages it came from (within the limits, so that it checks again). */
function correctionSpec(plan: IntersectionPlan): CorrectionSpec {
  const percent = (ms: number, max: number) => Math.min(max, (ms * 100) / plan.cycleMs);
  const limits = PLAN_LIMITS.maxCorrectionPercent;
  const c = plan.correction;
  return c.mode === "dwell"
    ? { mode: "dwell", maxDwellPercent: percent(c.maxDwellMs, limits.dwell) }
    : {
        mode: "shortway",
        maxLengthenPercent: percent(c.maxLengthenMs, limits.shortwayLengthen),
        maxShortenPercent: percent(c.maxShortenMs, limits.shortwayShorten),
      };
}
