import { ConfigError } from "../config/errors.js";
import { compileIntersectionPlan, type IntersectionSetup, loadPlanData } from "../config/load.js";
import { compileScheduleBundle } from "../config/schedule-bundle.js";
import type { PlanCheck } from "../shell/corridor/participant-ports.js";
import type { Logger } from "../shell/log.js";

/**
 * The participant's plan-check port on a gateway: a PREPARE's plan text goes through the config loader
 * and the signal core's compile for this intersection, exactly as `greenwave plan check` does.
 */
export function compiledPlanCheck(setup: IntersectionSetup, log: Logger): PlanCheck {
  const me = setup.intersection.intersection.id;
  return {
    check(body) {
      try {
        if (body.plan.kind === "schedule")
          return {
            ok: true,
            plan: compileScheduleBundle(
              `PREPARE ${body.txnId}: schedule ${body.plan.id}`,
              body.planFile,
              setup,
              {
                id: body.plan.id,
                version: body.plan.version,
              },
            ),
          };
        const plan = loadPlanData(`PREPARE ${body.txnId}: plan ${body.plan.id}`, body.planFile, me);
        if (plan.raw.id !== body.plan.id || plan.raw.version !== body.plan.version)
          return {
            ok: false,
            reason: `the plan text is ${plan.raw.id} v${plan.raw.version}, not ${body.plan.id} v${body.plan.version}`,
          };
        return {
          ok: true,
          plan: compileIntersectionPlan(setup.intersection.intersection, plan, setup.corridor),
        };
      } catch (error) {
        if (error instanceof ConfigError) return { ok: false, reason: error.message };
        // The plan came over the network: one that trips a bug in the checks is refused (a no vote),
        // never allowed to take the gateway and its lamps down. The log says what to report.
        log.error(
          { txnId: body.txnId, error: (error as Error).stack ?? String(error) },
          "checking a PREPARE's plan failed unexpectedly: voting no (please report)",
        );
        return { ok: false, reason: `internal error while checking the plan: ${(error as Error).message}` };
      }
    },
  };
}
