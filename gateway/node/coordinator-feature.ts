import { dirname } from "node:path";
import { ConfigError } from "../config/errors.js";
import { type LoadedPlan, loadPlanData } from "../config/load.js";
import { planDigest } from "../config/plan-digest.js";
import { DEFAULT_COORDINATOR_CONFIG } from "../core/corridor/coordinator.js";
import type { CorridorEnvelope } from "../protocol/corridor-messages.js";
import type { Command, Reply } from "../protocol/messages.js";
import type { Logger } from "../shell/log.js";
import { CoordinatorStore } from "../store/coordinator-store.js";
import { activationRequestRefusal } from "../core/corridor/prepare-check.js";
import type { GatewayParts } from "./gateway-parts.js";
import type { AuditTrail } from "./audit-trail.js";
import type { BrokerLink } from "./broker-link.js";
import { CoordinatorHost, coordinatePush } from "../shell/corridor/coordinator-host.js";

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
    readonly dailySyncMs: number;
  };
  private readonly audit: AuditTrail;
  private readonly log: Logger;

  constructor(parts: GatewayParts, link: BrokerLink) {
    const { store, clock } = parts;
    this.ids = { ...parts.ids, dailySyncMs: parts.setup.corridor.dailySyncMs };
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
    const plan = this.loadPlan(command, reply);
    if (!plan) return;
    this.pushing = `${plan.raw.id} v${plan.raw.version}`;
    try {
      const result = await coordinatePush(this.host, {
        name: this.ids.intersection,
        dailySyncMs: this.ids.dailySyncMs,
        planFile: plan.raw,
        digest: planDigest(plan.raw),
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
      if (!(error instanceof ConfigError)) throw error;
      reply({
        id: command.id,
        command: command.name,
        ok: false,
        error: { code: "invalid", message: error.message },
      });
      return null;
    }
  }
}
