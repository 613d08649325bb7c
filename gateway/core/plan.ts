import type { Checked, Issue } from "./issues.js";
import {
  type Correction,
  IN_STEP_TOLERANCE_MS,
  type Intersection,
  type IntersectionPlan,
  type OffsetReference,
  type Stage,
  type StageActuation,
} from "./model.js";
import { formatSeconds } from "./units.js";

/** Limits a plan must respect, whoever sent it. */
export const PLAN_LIMITS = {
  minCycleMs: 30_000,
  maxCycleMs: 300_000,
  minStages: 2,
  maxStages: 16,
  maxCorrectionPercent: { shortwayLengthen: 50, shortwayShorten: 35, dwell: 100 },
} as const;

export interface StageSpec {
  readonly id: string;
  readonly groups: readonly string[];
  readonly splitMs: number;
  /** A non-coordinated stage of an actuated-coordinated plan. */
  readonly actuated?: StageActuation;
}

export type CorrectionSpec =
  | { readonly mode: "dwell"; readonly maxDwellPercent: number }
  | { readonly mode: "shortway"; readonly maxLengthenPercent: number; readonly maxShortenPercent: number };

/** One intersection's part of a corridor plan, as written in the plan file (durations already in ms). */
export interface PlanPartSpec {
  readonly offsetMs: number;
  readonly offsetReference: OffsetReference;
  readonly coordinatedStage: string;
  readonly correction: CorrectionSpec;
  readonly stages: readonly StageSpec[];
}

export interface PlanHeader {
  readonly planId: string;
  readonly version: number;
  readonly cycleMs: number;
  /** The corridor's daily sync point (core/time/time-reference.ts). */
  readonly dailySyncMs: number;
  readonly timeZone?: string;
  /** The plan's pattern number in the event log (code 131), when the plan file gives one. */
  readonly pattern?: number;
}

interface ResolvedStage {
  readonly id: string;
  readonly groups: number[];
  readonly member: boolean[];
  readonly splitMs: number;
}

/** Whether a plan is actuated-coordinated: some of its stages are served on demand. */
export function isActuated(plan: IntersectionPlan): boolean {
  return plan.stages.some((s) => s.actuation !== undefined);
}

/** Each stage's groups by index, reporting unknown and repeated groups and non-permissive pairs. */
function resolveStages(
  intersection: Intersection,
  part: PlanPartSpec,
  report: (path: readonly (string | number)[], message: string) => void,
): ResolvedStage[] {
  const groupIndex = new Map(intersection.groups.map((g, i) => [g.id, i]));
  const stages: ResolvedStage[] = [];
  part.stages.forEach((spec, s) => {
    const member = intersection.groups.map(() => false);
    const groups: number[] = [];
    spec.groups.forEach((groupId, k) => {
      const gi = groupIndex.get(groupId);
      if (gi === undefined) {
        report(
          ["stages", s, "groups", k],
          `stage ${spec.id} names group "${groupId}", which intersection ${intersection.id} does not have (it has ${intersection.groups.map((g) => g.id).join(", ")})`,
        );
      } else if (member[gi]) {
        report(["stages", s, "groups", k], `stage ${spec.id} names group ${groupId} twice`);
      } else {
        member[gi] = true;
        groups.push(gi);
      }
    });
    for (let a = 0; a < groups.length; a++) {
      for (let b = a + 1; b < groups.length; b++) {
        const ga = groups[a] as number;
        const gb = groups[b] as number;
        if (!intersection.permissive[ga]?.[gb]) {
          report(
            ["stages", s, "groups"],
            `stage ${spec.id} serves groups ${intersection.groups[ga]?.id} and ${intersection.groups[gb]?.id} together, but the permissive matrix does not allow them to show green together`,
          );
        }
      }
    }
    groups.sort((x, y) => x - y);
    stages.push({ id: spec.id, groups, member, splitMs: spec.splitMs });
  });

  return stages;
}

/**
 * Checks one intersection's part of a plan against that intersection and compiles it into the form the
 * sequencer runs. `at` is the field path of the part inside its plan file, so that every issue points at
 * the field to fix.
 */
export function compilePlan(
  intersection: Intersection,
  header: PlanHeader,
  part: PlanPartSpec,
  at: readonly (string | number)[] = [],
): Checked<IntersectionPlan> {
  // Every problem in one pass, so that fixing one does not reveal the next (a wrong split sum does not
  // hide a conflict); only a cycle or a stage count outside the limits leaves nothing to measure.
  const issues: Issue[] = checkPlanPart(header, part, intersection.id, at);
  if (!withinPlanLimits(header.cycleMs, part.stages.length)) return { ok: false, issues };
  const where = `plan ${header.planId}, intersection ${intersection.id}`;
  const report = (path: readonly (string | number)[], message: string) =>
    issues.push({ path: [...at, ...path], message: `${where}: ${message}` });
  const cycleMs = header.cycleMs;

  const stages = resolveStages(intersection, part, report);
  intersection.groups.forEach((group, gi) => {
    if (!stages.some((st) => st.member[gi])) {
      report(["stages"], `group ${group.id} is never served by any stage`);
    }
  });

  // An unknown group only drops out of its stage's minimum: a split shorter than what is left is short.
  const minimums = actuatedStageMinimums(
    intersection,
    stages,
    part.stages.map((spec) => spec.actuated),
  );
  checkActuation(intersection, part, stages, report);
  stages.forEach((st, s) => {
    const need = minimums[s] as StageMinimum;
    if (st.splitMs < need.minMs) {
      report(
        ["stages", s, "splitSeconds"],
        `stage ${st.id} has a split of ${formatSeconds(st.splitMs)}, shorter than the ${formatSeconds(need.minMs)} it needs (${need.why})`,
      );
    }
  });

  const coordinatedStage = stages.findIndex((st) => st.id === part.coordinatedStage);

  const correction = compileCorrection(part.correction, cycleMs, report);
  const slackMs = stages.reduce((sum, st, s) => sum + st.splitMs - (minimums[s] as StageMinimum).minMs, 0);
  if (correction && issues.length === 0) {
    const mustShortenMs =
      (correction.mode === "shortway" ? correction.maxShortenMs : 0) + IN_STEP_TOLERANCE_MS;
    if (slackMs < mustShortenMs) {
      report(
        ["correction"],
        correction.mode === "shortway"
          ? `shortway may shorten a cycle by ${formatSeconds(correction.maxShortenMs)} (+${formatSeconds(IN_STEP_TOLERANCE_MS)} trim) but the stages have only ${formatSeconds(slackMs)} above their minimums; lower maxShortenPercent or lengthen the splits`
          : `the stages have only ${formatSeconds(slackMs)} above their minimums; at least ${formatSeconds(IN_STEP_TOLERANCE_MS)} is needed to trim small offset errors`,
      );
    }
  }
  if (issues.length > 0 || !correction) return { ok: false, issues };

  const compiled: Stage[] = stages.map((st, s) => {
    const actuation = part.stages[s]?.actuated;
    return { ...st, minMs: (minimums[s] as StageMinimum).minMs, ...(actuation ? { actuation } : {}) };
  });
  return {
    ok: true,
    value: {
      intersectionId: intersection.id,
      planId: header.planId,
      version: header.version,
      cycleMs,
      offsetMs: part.offsetMs,
      offsetReference: part.offsetReference,
      coordinatedStage,
      stages: compiled,
      correction,
      referencePositionMs: referencePosition(intersection, compiled, coordinatedStage, part.offsetReference),
      dailySyncMs: header.dailySyncMs,
      ...(header.timeZone === undefined ? {} : { timeZone: header.timeZone }),
      ...(header.pattern === undefined ? {} : { pattern: header.pattern }),
    },
  };
}

function withinPlanLimits(cycleMs: number, stageCount: number): boolean {
  return (
    cycleMs >= PLAN_LIMITS.minCycleMs &&
    cycleMs <= PLAN_LIMITS.maxCycleMs &&
    stageCount >= PLAN_LIMITS.minStages &&
    stageCount <= PLAN_LIMITS.maxStages
  );
}

/**
 * The checks of a plan part that need no intersection: cycle and stage limits, unique stage ids,
 * splits that sum to the cycle, the offset and the coordinated stage. Used on its own to check a plan
 * file, and first thing by compilePlan.
 */
export function checkPlanPart(
  header: PlanHeader,
  part: PlanPartSpec,
  intersectionId: string,
  at: readonly (string | number)[] = [],
): Issue[] {
  const issues: Issue[] = [];
  const where = `plan ${header.planId}, intersection ${intersectionId}`;
  const report = (path: readonly (string | number)[], message: string) =>
    issues.push({ path: [...at, ...path], message: `${where}: ${message}` });
  const cycleMs = header.cycleMs;
  if (cycleMs < PLAN_LIMITS.minCycleMs || cycleMs > PLAN_LIMITS.maxCycleMs) {
    issues.push({
      path: ["cycleSeconds"],
      message: `plan ${header.planId}: cycle ${formatSeconds(cycleMs)} is outside ${formatSeconds(PLAN_LIMITS.minCycleMs)}–${formatSeconds(PLAN_LIMITS.maxCycleMs)}`,
    });
    return issues;
  }
  if (part.stages.length < PLAN_LIMITS.minStages || part.stages.length > PLAN_LIMITS.maxStages) {
    report(
      ["stages"],
      `has ${part.stages.length} stages; a plan needs ${PLAN_LIMITS.minStages} to ${PLAN_LIMITS.maxStages}`,
    );
    return issues;
  }
  const stageIds = new Set<string>();
  part.stages.forEach((spec, s) => {
    if (stageIds.has(spec.id)) report(["stages", s, "id"], `stage id "${spec.id}" is used twice`);
    stageIds.add(spec.id);
    if (spec.groups.length === 0) report(["stages", s, "groups"], `stage ${spec.id} serves no group`);
    if (spec.splitMs <= 0)
      report(["stages", s, "splitSeconds"], `stage ${spec.id} has a split of ${formatSeconds(spec.splitMs)}`);
  });
  const splitSum = part.stages.reduce((sum, st) => sum + st.splitMs, 0);
  if (splitSum !== cycleMs) {
    report(["stages"], `splits sum to ${formatSeconds(splitSum)} but the cycle is ${formatSeconds(cycleMs)}`);
  }
  if (!stageIds.has(part.coordinatedStage)) {
    report(
      ["coordinatedStage"],
      `coordinated stage "${part.coordinatedStage}" is not one of its stages (${[...stageIds].join(", ")})`,
    );
  }
  if (part.offsetMs < 0 || part.offsetMs >= cycleMs) {
    report(
      ["offsetSeconds"],
      `offset ${formatSeconds(part.offsetMs)} must be at least 0 s and less than the cycle (${formatSeconds(cycleMs)})`,
    );
  }
  return issues;
}

function compileCorrection(
  spec: CorrectionSpec,
  cycleMs: number,
  report: (path: readonly (string | number)[], message: string) => void,
): Correction | null {
  const percentOf = (p: number) => Math.round((cycleMs * p) / 100);
  const checkPercent = (field: string, value: number, max: number): boolean => {
    if (value > 0 && value <= max) return true;
    report(
      ["correction", field],
      `correction ${field} is ${value} %; it must be above 0 and at most ${max} %`,
    );
    return false;
  };
  if (spec.mode === "dwell") {
    if (!checkPercent("maxDwellPercent", spec.maxDwellPercent, PLAN_LIMITS.maxCorrectionPercent.dwell))
      return null;
    return { mode: "dwell", maxDwellMs: percentOf(spec.maxDwellPercent) };
  }
  const lengthenOk = checkPercent(
    "maxLengthenPercent",
    spec.maxLengthenPercent,
    PLAN_LIMITS.maxCorrectionPercent.shortwayLengthen,
  );
  const shortenOk = checkPercent(
    "maxShortenPercent",
    spec.maxShortenPercent,
    PLAN_LIMITS.maxCorrectionPercent.shortwayShorten,
  );
  if (!lengthenOk || !shortenOk) return null;
  return {
    mode: "shortway",
    maxLengthenMs: percentOf(spec.maxLengthenPercent),
    maxShortenMs: percentOf(spec.maxShortenPercent),
  };
}

/**
 * The minimums of an actuated plan's stages: the fixed-time minimums (`stageMinimums`), then what
 * actuation adds. An actuated stage's minimum green counts too: its force-off (the end of its split) must
 * leave room for the minimum green and the clearances, however much the offset correction shortens the
 * cycle. And a fixed stage next to an actuated one may have to start or end a group that fixed-time
 * operation carries through: an actuated stage may go by without showing it (a walk not on pedestrian
 * recall is shown only when called; a stage with no recall is skipped when uncalled). A fixed stage
 * shows all its groups, so one that may both start and end a group there must hold its whole minimum
 * and clearances — or it overruns its split in every such cycle and the stages after it are skipped
 * (a random plan whose walk ran in all three stages starved the third).
 */
export function actuatedStageMinimums(
  intersection: Intersection,
  stages: readonly {
    readonly id: string;
    readonly groups: readonly number[];
    readonly member: readonly boolean[];
  }[],
  actuations: readonly (StageActuation | undefined)[],
): StageMinimum[] {
  const n = stages.length;
  const mayNotShow = (j: number, gi: number): boolean => {
    const actuation = actuations[j];
    const g = intersection.groups[gi];
    if (!actuation || !g) return false;
    return g.kind === "pedestrian" ? !actuation.pedestrianRecall : actuation.recall === "none";
  };
  return stageMinimums(intersection, stages).map((base, s) => {
    const actuation = actuations[s];
    const stage = stages[s];
    if (!stage) return base;
    let best = base;
    if (actuation) {
      for (const gi of stage.groups) {
        const g = intersection.groups[gi];
        if (!g || g.kind !== "vehicle") continue;
        const need = Math.max(actuation.minGreenMs, g.minGoMs) + g.clearanceMs + g.redClearanceMs;
        if (need > best.minMs)
          best = {
            minMs: need,
            why: `its actuated minimum green ${formatSeconds(actuation.minGreenMs)} + ${clearanceWhy(intersection, gi)} of group ${g.id}; a force-off earlier would cut the minimum`,
          };
      }
      return best;
    }
    const [prev, next] = [(s - 1 + n) % n, (s + 1) % n];
    for (const gi of stage.groups) {
      const g = intersection.groups[gi];
      const mayEnd = !stages[next]?.member[gi] || mayNotShow(next, gi);
      if (!g || !mayEnd || n < 2) continue;
      const mayStart = !stages[prev]?.member[gi] || mayNotShow(prev, gi);
      // Only what actuation adds: the fixed-time minimum has counted the rest.
      const because = [
        ...(mayStart && mayNotShow(prev, gi)
          ? [`the actuated stage ${stages[prev]?.id} before it may not show it`]
          : []),
        ...(mayNotShow(next, gi)
          ? [`the actuated stage ${stages[next]?.id} after it may not go on with it`]
          : []),
      ];
      const need = (mayStart ? g.minGoMs : 0) + g.clearanceMs + g.redClearanceMs;
      if (because.length > 0 && need > best.minMs)
        best = {
          minMs: need,
          why: `group ${g.id}: ${mayStart ? `${g.kind === "vehicle" ? "minimum green" : "walk"} ${formatSeconds(g.minGoMs)} + ` : ""}${clearanceWhy(intersection, gi)}, since ${because.join(" and ")} (${g.kind === "vehicle" ? "no recall" : "no pedestrian recall"})`,
        };
    }
    return best;
  });
}

/**
 * The actuated stages' own rules: the coordinated stage is never actuated (it keeps its band on max
 * recall); passage and minimum fit under the maximum green; and every group an actuated stage serves
 * can be called, by a detector or a recall — or it would never be served.
 */
function checkActuation(
  intersection: Intersection,
  part: PlanPartSpec,
  stages: readonly ResolvedStage[],
  report: (path: readonly (string | number)[], message: string) => void,
): void {
  const called = intersection.groups.map(() => false);
  for (const d of intersection.detectors ?? []) for (const g of d.calls) called[g] = true;
  part.stages.forEach((spec, s) => {
    const a = spec.actuated;
    const stage = stages[s];
    if (!a || !stage) return;
    const at = ["stages", s, "actuated"];
    if (spec.id === part.coordinatedStage) {
      report(
        at,
        `stage ${spec.id} is the coordinated stage: it keeps its band on max recall and cannot be actuated; remove "actuated" from it`,
      );
      return;
    }
    if (a.passageMs > a.maxGreenMs)
      report(
        [...at, "passageSeconds"],
        `stage ${spec.id} has a passage time of ${formatSeconds(a.passageMs)}, longer than its maximum green ${formatSeconds(a.maxGreenMs)}: lower the passage time or raise the maximum green`,
      );
    if (a.minGreenMs > a.maxGreenMs)
      report(
        [...at, "minGreenSeconds"],
        `stage ${spec.id} has a minimum green of ${formatSeconds(a.minGreenMs)}, longer than its maximum green ${formatSeconds(a.maxGreenMs)}`,
      );
    const walks = stage.groups.filter((g) => intersection.groups[g]?.kind === "pedestrian");
    const names = (gs: readonly number[]) => gs.map((g) => intersection.groups[g]?.id).join(", ");
    if (a.recall === "none" && !a.pedestrianRecall && !stage.groups.some((g) => called[g]))
      report(
        [...at, "recall"],
        `stage ${spec.id} is served only when called, but no detector of intersection ${intersection.id} calls ${names(stage.groups)}: it would never be served; add a detector or set recall: min`,
      );
    // A walk served by a stage that is not actuated (the coordinated one) is shown there anyway.
    const silentWalks = walks.filter(
      (g) => !called[g] && !part.stages.some((o, k) => !o.actuated && stages[k]?.member[g]),
    );
    if (!a.pedestrianRecall && silentWalks.length > 0)
      report(
        [...at, "pedestrianRecall"],
        `stage ${spec.id} walks ${names(silentWalks)} only when a push button calls, but no detector of intersection ${intersection.id} calls ${silentWalks.length === 1 ? "it" : "them"}: the walk would never be shown; add a push button or set pedestrianRecall: true`,
      );
  });
}

export interface StageMinimum {
  readonly minMs: number;
  /** Which group sets the minimum, for error messages. */
  readonly why: string;
}

/**
 * The shortest each stage may run. A group that ends with stage k needs its clearance and red clearance
 * inside stage k, and its minimum green (or walk) inside the stages it has been served in so far. For
 * the stages before k it counts only their own minimums, so the result holds however much the offset
 * correction shortens them. The sequencer still guards every minimum at run time; this is what lets a
 * plan promise its shortening limit.
 */
export function stageMinimums(
  intersection: Intersection,
  stages: readonly { readonly id: string; readonly member: readonly boolean[] }[],
): StageMinimum[] {
  const n = stages.length;
  const endingClearance = (k: number): StageMinimum => {
    let best: StageMinimum = { minMs: 0, why: "no group ends in it" };
    const next = stages[(k + 1) % n] as (typeof stages)[number];
    intersection.groups.forEach((g, gi) => {
      if (stages[k]?.member[gi] && !next.member[gi]) {
        const ms = g.clearanceMs + g.redClearanceMs;
        if (ms > best.minMs) best = { minMs: ms, why: clearanceWhy(intersection, gi) };
      }
    });
    return best;
  };
  const base = stages.map((_, k) => endingClearance(k));
  return stages.map((stage, k) => {
    let best = base[k] as StageMinimum;
    const next = stages[(k + 1) % n] as (typeof stages)[number];
    intersection.groups.forEach((g, gi) => {
      if (!stage.member[gi] || next.member[gi]) return;
      let servedBefore = 0;
      for (let back = 1; back < n; back++) {
        const j = (k - back + n) % n;
        if (!stages[j]?.member[gi]) break;
        servedBefore += (base[j] as StageMinimum).minMs;
      }
      const need = g.minGoMs + g.clearanceMs + g.redClearanceMs - servedBefore;
      if (need > best.minMs) {
        const go = g.kind === "vehicle" ? "minimum green" : "walk";
        const carried =
          servedBefore > 0 ? ` − ${formatSeconds(servedBefore)} already served in earlier stages` : "";
        best = {
          minMs: need,
          why: `group ${g.id}: ${go} ${formatSeconds(g.minGoMs)} + ${clearanceWhy(intersection, gi)}${carried}`,
        };
      }
    });
    return best;
  });
}

function clearanceWhy(intersection: Intersection, gi: number): string {
  const g = intersection.groups[gi];
  if (!g) return "";
  const clearance = g.kind === "vehicle" ? "yellow" : "pedestrian clearance";
  return `${clearance} ${formatSeconds(g.clearanceMs)} + red clearance ${formatSeconds(g.redClearanceMs)}`;
}

/** Where the offset's reference point lies in the nominal cycle, counted from the start of stage 0. */
function referencePosition(
  intersection: Intersection,
  stages: readonly Stage[],
  coordinated: number,
  reference: OffsetReference,
): number {
  let start = 0;
  for (let s = 0; s < coordinated; s++) start += (stages[s] as Stage).splitMs;
  if (reference === "start-of-green") return start;
  const stage = stages[coordinated] as Stage;
  const next = stages[(coordinated + 1) % stages.length] as Stage;
  let clearance = 0;
  intersection.groups.forEach((g, gi) => {
    if (stage.member[gi] && !next.member[gi])
      clearance = Math.max(clearance, g.clearanceMs + g.redClearanceMs);
  });
  return start + stage.splitMs - clearance;
}

/**
 * How many cycles after a plan takes effect the intersection is back in step at the latest, given the
 * plan's correction limits. A cycle can run late by tick quantisation: up to three ticks per stage
 * (the start of a clearance, its end, the end of the red clearance) when a stage runs at its minimum,
 * so a cycle corrects at least (limit − that loss). One more cycle is allowed for the switch itself,
 * where the new stage sequence may stretch its first stage to honour a minimum green.
 */
export function correctionCycleBound(plan: IntersectionPlan, tickMs: number): number {
  const c = plan.cycleMs;
  const tol = IN_STEP_TOLERANCE_MS;
  const lossMs = 3 * plan.stages.length * tickMs;
  const cyclesFor = (distanceMs: number, limitMs: number) =>
    distanceMs <= tol
      ? 0
      : limitMs <= lossMs
        ? Number.POSITIVE_INFINITY
        : Math.ceil((distanceMs - tol) / (limitMs - lossMs));
  let worst = 0;
  const corr = plan.correction;
  for (let late = 0; late < c; late += 100) {
    const early = c - late;
    const cycles =
      corr.mode === "dwell"
        ? Math.min(late <= tol ? 0 : Number.POSITIVE_INFINITY, cyclesFor(early, corr.maxDwellMs))
        : Math.min(cyclesFor(late, corr.maxShortenMs), cyclesFor(early, corr.maxLengthenMs));
    worst = Math.max(worst, cycles);
  }
  return worst + 2;
}
