import type { GatewayParts } from "./gateway-parts.js";
import { degradeOnStoreFailure } from "./store-guard.js";

/**
 * What the controller does, in the log and the audit trail: faults and resets audited at once
 * (forced), plan and mode changes soon (informational), a plan taking effect together with the plan in
 * force (one transaction), cycles and stages logged only.
 */
export function registerSignalAudit(parts: GatewayParts): void {
  const { bus, audit, store, clock, log } = parts;
  bus.on("fault", (latch) => {
    log.error({ latch }, `FAULT latched, intersection in flash: ${latch.message}`);
    audit.now("fault-latched", null, { kind: latch.kind, message: latch.message, groups: latch.groups });
  });
  bus.on("reset", ({ by }) => {
    log.warn({ by }, "fault reset by operator");
    audit.now("fault-reset", by, {});
  });
  bus.on("signal", (event) => {
    switch (event.type) {
      case "stage-start":
      case "stage-terminated":
      case "detector":
        // Many a cycle: the high-resolution event log keeps them (hires-log.ts); here, debug only.
        log.debug({ event }, event.type);
        return;
      case "detector-failed":
        log.warn({ event }, event.message);
        audit.soon(event.type, null, {
          detector: event.detector,
          reason: event.reason,
          recall: event.recall,
          message: event.message,
        });
        return;
      case "cycle-start":
        // Once a cycle: logged, not audited (the audit trail is for changes).
        log.info({ event }, event.type);
        return;
      case "plan-activated": {
        // The plan in force and its audit event in one transaction: a reader (or a crash) sees both or
        // neither. A store failure rolls both back (and is degraded outside the transaction).
        const { type, ...detail } = event;
        degradeOnStoreFailure(
          log,
          `plan ${event.planId} v${event.version} in force but not recorded`,
          () =>
            store.atomically(() => {
              store.setPlanInForce({
                planId: event.planId,
                version: event.version,
                sinceWallMs: clock.now().wallMs,
                activationWallMs: event.activationWallMs,
              });
              audit.within(type, null, detail);
            }),
          undefined,
        );
        audit.committed();
        log.info({ event }, event.type);
        return;
      }
      default: {
        log.info({ event }, event.type);
        const { type, ...detail } = event;
        audit.soon(type, null, detail);
      }
    }
  });
}
