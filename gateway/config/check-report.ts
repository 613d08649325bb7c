import { IN_STEP_TOLERANCE_MS, type IntersectionPlan } from "../core/model.js";
import { correctionCycleBound } from "../core/plan.js";
import { convergence } from "../core/convergence.js";
import { formatSeconds } from "../core/units.js";
import { ConfigError, formatIssue, type LocatedIssue } from "./errors.js";

/** The result of checking a file: what was checked (for the operator) and every issue found. */
export interface CheckReport {
  readonly checked: string[];
  readonly issues: LocatedIssue[];
  /** Worth knowing but not wrong (the file passes): advice, each located like an issue. */
  readonly notes: LocatedIssue[];
}

/** The tick the gateway runs at; the correction bound allows one tick of quantisation per cycle. */
export const DEFAULT_TICK_MS = 100;

export function emptyReport(): CheckReport {
  return { checked: [], issues: [], notes: [] };
}

/** Runs one check that may throw a ConfigError, keeping its issues, so that the next check still runs. */
export function collect(report: CheckReport, work: () => void): void {
  try {
    work();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    report.issues.push(...error.issues);
  }
}

/** `collect` for a check that yields what later checks build on: null when it failed. */
export function attempt<T>(report: CheckReport, work: () => T): T | null {
  let result: T | null = null;
  collect(report, () => {
    result = work();
  });
  return result;
}

/** Each issue once: a plan's cycle outside the limits is found in each of its parts. */
export function withoutRepeats(report: CheckReport): CheckReport {
  const seen = new Set<string>();
  const issues = report.issues.filter((issue) => {
    const key = formatIssue(issue);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return { checked: report.checked, issues, notes: report.notes };
}

export function describePlan(plan: IntersectionPlan): string {
  const c = plan.correction;
  const correction =
    c.mode === "dwell"
      ? `dwell up to ${formatSeconds(c.maxDwellMs)}`
      : `shortway +${formatSeconds(c.maxLengthenMs)}/−${formatSeconds(c.maxShortenMs)}`;
  return `plan ${plan.planId} v${plan.version} at ${plan.intersectionId}: cycle ${formatSeconds(plan.cycleMs)}, offset ${formatSeconds(plan.offsetMs)} (${plan.offsetReference} of ${plan.stages[plan.coordinatedStage]?.id}), ${plan.stages.length} stages, ${correction}; ${describeConvergence(plan)}`;
}

/**
 * How long offset correction takes at worst (core/convergence.ts): from any offset error at a cycle
 * boundary (a clock step, a hold released), and after a switch to this plan (the switching cycle may
 * stretch). A start-up enters the cycle where the offset puts it (core/start-up.ts): in step at once.
 */
export function describeConvergence(plan: IntersectionPlan): string {
  const worst = convergence(plan, DEFAULT_TICK_MS);
  const switched = correctionCycleBound(plan, DEFAULT_TICK_MS);
  if (!Number.isFinite(worst.cycles)) {
    const exact = convergence(plan, 0);
    return `no hard bound on getting in step: on ${DEFAULT_TICK_MS} ms ticks a cycle can end up to ${formatSeconds(worst.lossPerCycleMs)} late (a stage at its minimum passes a late start on), more than the ${formatSeconds(IN_STEP_TOLERANCE_MS)} in-step tolerance; without that, ${exact.cycles} cycles (${Math.ceil(exact.ms / 1000)} s); give the stages time above their minimums`;
  }
  const cycles = `${worst.cycles} cycle${worst.cycles === 1 ? "" : "s"}`;
  return `in step at start-up (entered where the clock puts the cycle), within ${cycles} (${Math.ceil(worst.ms / 1000)} s) from any offset error, within ${switched} cycles of a switch`;
}
