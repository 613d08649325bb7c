import { dirname } from "node:path";
import { ConfigError } from "../config/errors.js";
import { type IntersectionSetup, type LoadedPlan, loadPlanData } from "../config/load.js";
import { planDigest } from "../config/plan-digest.js";
import { DEFAULT_COORDINATOR_CONFIG } from "../core/corridor/coordinator.js";
import type { CorridorEnvelope } from "../protocol/corridor-messages.js";
import type { Command, Reply } from "../protocol/messages.js";
import type { Logger } from "../shell/log.js";
import { CoordinatorStore } from "../store/coordinator-store.js";
import { activationRequestRefusal } from "../core/corridor/prepare-check.js";
import type { TimeReference } from "../core/time/time-reference.js";
import type { GatewayParts } from "./gateway-parts.js";
import { setupInForce } from "./config-reload.js";
import type { AuditTrail } from "./audit-trail.js";
import type { BrokerLink } from "./broker-link.js";
import { CoordinatorHost, coordinatePush, type PushedChange } from "../shell/corridor/coordinator-host.js";
import { compileScheduleBundle } from "../config/schedule-bundle.js";

type PlanPush = Extract<Command, { name: "plan-push" }>;
export type SendReply = (reply: Omit<Reply, "v" | "at">) => void;

/**
 * Any gateway on a broker can coordinate a corridor plan change for an operator (`plan-push`): its
 * coordinator machine runs here, its decision log beside the gateway's store, resumed on every connect
 * (a restarted coordinator finishes its commits). One push at a time.
 */
export class CoordinatorFeature {
  private readonly decisionLog: CoordinatorStore;
  private readonly host: CoordinatorHost;
  private timer: NodeJS.Timeout | null = null;
  /** The plan push this gateway coordinates, if any. */
  private pushing: string | null = null;

  private readonly ids: {
    readonly corridor: string;
    readonly intersection: string;
    readonly timeReference: TimeReference;
  };
  private readonly audit: AuditTrail;
  private readonly log: Logger;
  private readonly setup: IntersectionSetup;

  constructor(parts: GatewayParts, link: BrokerLink) {
    const { store, clock } = parts;
    this.setup = parts.setup;
    this.ids = { ...parts.ids, timeReference: parts.setup.corridor.timeReference };
    this.audit = parts.audit;
    this.log = parts.log;
    this.decisionLog = CoordinatorStore.open(dirname(store.file));
    this.host = new CoordinatorHost(
      this.ids.intersection,
      this.ids.corridor,
      DEFAULT_COORDINATOR_CONFIG,
      this.decisionLog,
      // Like the participant: nothing is queued while offline; the protocol resends and asks.
      (topic, payload, options) =>
        void link.publish(topic, payload, { retain: options.retain ?? false }).catch(() => {}),
      () => clock.now(),
    );
  }

  start(): void {
    this.timer = setInterval(() => this.host.tick(), 50);
    this.timer.unref();
  }

  /** A message of one of this gateway's coordinator runs: taken; a participant's: left for the participant. */
  take(envelope: CorridorEnvelope): boolean {
    return this.host.receive(envelope, false);
  }

  /** A restarted gateway finishes the commits of its coordinator log (COMMIT resent until acknowledged). */
  resume(): void {
    const resumed = this.host.resumeLog();
    if (resumed.length > 0)
      this.log.warn(
        { txns: resumed.map((r) => r.state.txnId) },
        "finishing committed transactions of the coordinator log",
      );
  }

  /** Why this gateway cannot coordinate a push now, or null. */
  get busy(): string | null {
    return this.pushing ? `already coordinating ${this.pushing}: one plan push at a time` : null;
  }

  /** Coordinates a corridor plan change for an operator, and replies with its outcome once decided. */
  push(command: PlanPush, reply: SendReply, counted: () => void): void {
    this.coordinate(command, reply, counted).catch((error: Error) => {
      this.log.error({ error: error.message, id: command.id }, "plan push failed");
      reply({
        id: command.id,
        command: command.name,
        ok: false,
        error: { code: "refused", message: `coordination failed: ${error.message}` },
      });
    });
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  close(): void {
    this.decisionLog.close();
  }

  private async coordinate(command: PlanPush, reply: SendReply, counted: () => void): Promise<void> {
    const refusal = activationRequestRefusal(command.atWallMs, this.host.now().wallMs);
    if (refusal) {
      reply({
        id: command.id,
        command: command.name,
        ok: false,
        error: { code: "refused", message: refusal },
      });
      return;
    }
    const change = this.loadChange(command, reply);
    if (!change) return;
    this.pushing =
      change.kind === "plan"
        ? `${change.planFile.id} v${change.planFile.version}`
        : change.kind === "schedule"
          ? `schedule ${change.scheduleId} v${change.version}`
          : change.kind === "keyring"
            ? `keyring v${change.version}`
            : `cancel of ${change.target}`;
    try {
      const result = await coordinatePush(this.host, {
        name: this.ids.intersection,
        timeReference: this.ids.timeReference,
        change,
        atWallMs: command.atWallMs,
        leadMs: command.leadMs,
        ackTimeoutMs: command.ackTimeoutMs,
      });
      this.log.info(
        { txn: result.txnId, outcome: result.outcome, reason: result.reason },
        "plan push coordinated",
      );
      this.audit.now("plan-push", command.by, {
        txnId: result.txnId,
        plan: result.plan,
        outcome: result.outcome,
        reason: result.reason,
      });
      counted();
      reply({ id: command.id, command: command.name, ok: true, result: { push: result } });
    } finally {
      this.pushing = null;
    }
  }

  /**
   * The plan, or the schedule bundle (`schedule push --via`), checked before any lease is taken: a plan
   * whole; a schedule as this gateway's own participant will check it (the others check theirs).
   */
  private loadChange(command: PlanPush, reply: SendReply): PushedChange | null {
    if (command.kind !== "schedule") {
      const plan = this.loadPlan(command, reply);
      if (!plan) return null;
      return {
        kind: "plan",
        planFile: plan.raw,
        digest: planDigest(plan.raw),
        ...(command.until !== undefined ? { until: command.until } : {}),
        // Sent on with the PREPARE: each participant checks it against its own trusted keys.
        ...(command.signature ? { signature: command.signature } : {}),
      };
    }
    try {
      const label = `plan-push ${command.id}: schedule`;
      const raw = (command.planFile as { schedule?: { id?: unknown; version?: unknown } } | null)?.schedule;
      const claimed = { id: String(raw?.id), version: Number(raw?.version) };
      // Checked against the configuration in force (the reloaded file after a SIGHUP).
      const setup = setupInForce(this.setup);
      const compiled = compileScheduleBundle(label, command.planFile, setup, claimed);
      return {
        kind: "schedule",
        scheduleId: compiled.scheduleId,
        version: compiled.version,
        digest: compiled.digest,
        bundle: command.planFile,
        participants: setup.corridor.raw.intersections.map((member) => member.id),
        ...(command.signature ? { signature: command.signature } : {}),
      };
    } catch (error) {
      return refuseInvalid(error, command, reply);
    }
  }

  private loadPlan(command: PlanPush, reply: SendReply): LoadedPlan | null {
    try {
      const plan = loadPlanData(`plan-push ${command.id}`, command.planFile);
      if (plan.raw.corridor !== this.ids.corridor)
        throw new ConfigError([
          {
            file: `plan-push ${command.id}`,
            path: ["corridor"],
            message: `plan ${plan.raw.id} is for corridor ${plan.raw.corridor}, not ${this.ids.corridor}`,
          },
        ]);
      return plan;
    } catch (error) {
      return refuseInvalid(error, command, reply);
    }
  }
}

/** A push whose content fails the checks is refused with what is wrong (anything else is a bug: thrown). */
function refuseInvalid(error: unknown, command: PlanPush, reply: SendReply): null {
  if (!(error instanceof ConfigError)) throw error;
  reply({
    id: command.id,
    command: command.name,
    ok: false,
    error: { code: "invalid", message: error.message },
  });
  return null;
}
