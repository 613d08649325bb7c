import type { IntersectionSetup } from "../config/load.js";
import type { IntersectionPlan } from "../core/model.js";
import type { Logger } from "../shell/log.js";
import type { GatewayStore } from "../store/store.js";
import { isStoreFailure } from "../store/errors.js";
import { degradeOnStoreFailure } from "./store-guard.js";

/**
 * The plan to start with: the one in force when the gateway stopped (a committed corridor change
 * survives a restart), else the configuration's initial plan.
 */
export function planAtStart(setup: IntersectionSetup, store: GatewayStore, log: Logger): IntersectionPlan {
  try {
    const inForce = store.planInForce();
    if (!inForce) return setup.initialPlan;
    if (inForce.planId === setup.initialPlan.planId && inForce.version === setup.initialPlan.version)
      return setup.initialPlan;
    const body = store.planBody(inForce.planId, inForce.version) as IntersectionPlan | null;
    const count = setup.intersection.intersection.groups.length;
    const fits =
      body !== null &&
      body.intersectionId === setup.intersection.intersection.id &&
      Array.isArray(body.stages) &&
      body.stages.every(
        (stage) => stage.member.length === count && stage.groups.every((g: number) => g < count),
      );
    if (fits) return body;
    log.warn(
      { inForce },
      "the stored plan in force does not fit this intersection any more: starting with the configured plan",
    );
  } catch (error) {
    if (!isStoreFailure(error)) throw error;
    log.error({ error: error.message }, "cannot read the plan in force: starting with the configured plan");
  }
  return setup.initialPlan;
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
