import type { IntersectionSetup } from "../config/load.js";
import type { PreparedTxn } from "../core/corridor/participant.js";
import type { CommittedChange } from "../core/schedule/committed-change.js";
import type { CorridorBody } from "../protocol/corridor-messages.js";
import type { Clock } from "../shell/clock.js";
import {
  type CorridorSettings,
  DEFAULT_CORRIDOR_SETTINGS,
  type ParticipantDisk,
} from "../shell/corridor/participant-ports.js";
import { ParticipantShell } from "../shell/corridor/participant-shell.js";
import type { Logger } from "../shell/log.js";
import type { GatewayStore } from "../store/store.js";
import { compiledPlanCheck } from "./compiled-plan-check.js";
import { setupInForce } from "./config-reload.js";

export { type CorridorSettings, DEFAULT_CORRIDOR_SETTINGS };

/** What the gateway node does for its participant. */
export interface ParticipantHost {
  send(to: string, body: CorridorBody): void;
  /** A committed plan, or a committed schedule, with its transaction. */
  schedulePlan(change: CommittedChange, txn: PreparedTxn): void;
  /**
   * Why the controller could not take a plan change for this instant, or null when it can: its queue
   * of waiting changes is bounded, and a gateway that is stopping takes none.
   */
  planRefusal(activationWallMs: number): string | null;
  /** A committed change cancelled before its instant: taken back from the controller (and the schedule). */
  withdrawPlan(txnId: string, final: boolean): void;
  audit(type: string, actor: string | null, detail: Record<string, unknown>): void;
  changed(): void;
}

/** The gateway's SQLite store as the participant's disk port. */
export function storeParticipantDisk(store: GatewayStore): ParticipantDisk {
  return {
    leaseEpoch: () => store.leaseEpoch(),
    persistLeaseEpoch: (epoch) => store.persistLeaseEpoch(epoch),
    participantRecord: (maxTombstones) => store.participantRecord(maxTombstones),
    persistPrepared: (txn, planBody, highestToken, atWallMs) =>
      store.persistPrepared(txn, { body: planBody }, highestToken, atWallMs),
    persistOutcome: (txnId, outcome, forced, atWallMs, signature) =>
      store.persistOutcome(txnId, outcome, atWallMs, forced, signature),
    planBody: (planId, version) => store.planBody(planId, version) as CommittedChange | null,
    committedTransactions: (limit) => store.committedTransactions(limit),
    transactionRecord: (txnId) => {
      const t = store.transaction(txnId);
      return t
        ? {
            txn: t,
            phase: t.phase,
            planId: t.plan.planId,
            activationWallMs: t.activationWallMs,
            cancelledBy: t.cancelledBy,
          }
        : null;
    },
    planInForce: () => store.planInForce(),
  };
}

/**
 * This intersection's lease authority and 2PC participant on the gateway: the shared interpreter
 * (gateway/shell/corridor/participant-shell.ts) over the gateway's SQLite store, its MQTT session (the
 * host's `send`), its clock and the config loader's plan compile — the same checks as `plan check`.
 */
export class CorridorParticipant extends ParticipantShell {
  constructor(
    setup: IntersectionSetup,
    store: GatewayStore,
    clock: Clock,
    log: Logger,
    host: ParticipantHost,
    settings: CorridorSettings = DEFAULT_CORRIDOR_SETTINGS,
  ) {
    // The corridor's keyring committed in this store counts with the gateway's keys directory.
    settings.planTrust?.useKeyring?.(() => store.committedKeyring());
    super({
      me: setup.intersection.intersection.id,
      disk: storeParticipantDisk(store),
      network: { send: (to, body) => host.send(to, body) },
      clock,
      // Against the configuration in force: after a SIGHUP reload, the reloaded file (config-reload.ts).
      planCheck: { check: (body) => compiledPlanCheck(setupInForce(setup), log).check(body) },
      host: {
        schedulePlan: (change, txn) => host.schedulePlan(change, txn),
        planRefusal: (activationWallMs) => host.planRefusal(activationWallMs),
        withdrawPlan: (txnId, final) => host.withdrawPlan(txnId, final),
        audit: (type, actor, detail) => host.audit(type, actor, detail),
        changed: () => host.changed(),
      },
      log: { warn: (message) => log.warn(message), error: (detail, message) => log.error(detail, message) },
      settings,
    });
  }
}
