import type { IntersectionSetup } from "../config/load.js";
import { sameContent } from "../core/corridor/plan-identity.js";
import type { IntersectionPlan } from "../core/model.js";
import { type ScheduleRunnerState, scheduledPlanAt } from "../core/schedule/schedule-runner.js";
import type { Logger } from "../shell/log.js";
import type { GatewayStore } from "../store/store.js";
import { isStoreFailure } from "../store/errors.js";
import { degradeOnStoreFailure } from "./store-guard.js";

/**
 * The plan to start with: the one in force when the gateway stopped (a committed corridor change
 * survives a restart), else the configuration's initial plan. One content per (id, version): when the
 * plan file was edited under the version in force, the content this gateway holds under it runs (what
 * the corridor committed, what its status and its peers name), and the log says to raise the version.
 */
export function planAtStart(setup: IntersectionSetup, store: GatewayStore, log: Logger): IntersectionPlan {
  const configured = setup.initialPlan;
  try {
    const inForce = store.planInForce();
    if (!inForce) return configured;
    const body = store.planBody(inForce.planId, inForce.version) as IntersectionPlan | null;
    const fits = body !== null && fitsIntersection(body, setup);
    if (inForce.planId === configured.planId && inForce.version === configured.version) {
      // A plan stored before digests cannot be told from the file (its compiled form may only be
      // older): the file's, as before digests, and the store takes its digest (recordPlanAtStart).
      if (!fits || body.digest === undefined || sameContent(body, configured)) return configured;
      log.warn(
        { inForce, held: body.digest ?? null, file: configured.digest ?? null },
        `plan ${configured.planId} v${configured.version} in the plan file differs from the content this gateway holds under that version: running the one held; raise the version in the plan file to change it`,
      );
      return body;
    }
    if (fits) return body;
    log.warn(
      { inForce },
      "the stored plan in force does not fit this intersection any more: starting with the configured plan",
    );
  } catch (error) {
    if (!isStoreFailure(error)) throw error;
    log.error({ error: error.message }, "cannot read the plan in force: starting with the configured plan");
  }
  return configured;
}

/**
 * The plan to start with when a schedule governs: the one it says is in force now (the start-up flash
 * and all-red are the safe transition into it); otherwise, or under a manual override, `planAtStart`.
 */
export function startPlan(
  setup: IntersectionSetup,
  store: GatewayStore,
  log: Logger,
  schedule: ScheduleRunnerState,
  nowWallMs: number,
): IntersectionPlan {
  const scheduled = scheduledPlanAt(schedule, nowWallMs);
  if (scheduled === null || scheduled.intersectionId !== setup.intersection.intersection.id)
    return planAtStart(setup, store, log);
  log.info(
    { plan: scheduled.planId, version: scheduled.version },
    `starting with plan ${scheduled.planId} v${scheduled.version}: schedule ${schedule.compiled?.scheduleId} has it in force now`,
  );
  return scheduled;
}

/** Is a stored plan one of this intersection's, for its groups as configured now? */
function fitsIntersection(body: IntersectionPlan, setup: IntersectionSetup): boolean {
  const count = setup.intersection.intersection.groups.length;
  return (
    body.intersectionId === setup.intersection.intersection.id &&
    Array.isArray(body.stages) &&
    body.stages.every(
      (stage) => stage.member.length === count && stage.groups.every((g: number) => g < count),
    )
  );
}

/** Records the plan the controller starts with as received and in force (unless it already is). */
export function recordPlanAtStart(
  store: GatewayStore,
  plan: IntersectionPlan,
  wallMs: number,
  log: Logger,
): void {
  degradeOnStoreFailure(
    log,
    `the plan at start (${plan.planId} v${plan.version}) not recorded`,
    () => {
      store.recordPlan(plan.planId, plan.version, plan, "config", wallMs);
      const inForce = store.planInForce();
      if (!inForce || inForce.planId !== plan.planId || inForce.version !== plan.version)
        store.setPlanInForce({
          planId: plan.planId,
          version: plan.version,
          sinceWallMs: wallMs,
          activationWallMs: null,
        });
    },
    undefined,
  );
}
