import { ConfigError } from "../config/errors.js";
import { compileIntersectionPlan, type IntersectionSetup, loadPlanData } from "../config/load.js";
import {
  currentLease,
  fencingFloor,
  type LeaseAuthorityEffect,
  type LeaseAuthorityState,
  startLeaseAuthority,
  stepLeaseAuthority,
} from "../core/corridor/lease.js";
import {
  MAX_TOMBSTONES,
  type ParticipantEffect,
  type ParticipantEvent,
  type ParticipantState,
  type PrepareVerdict,
  type PreparedTxn,
  startParticipant,
  stepParticipant,
} from "../core/corridor/participant.js";
import { committedToResume } from "../core/corridor/resume.js";
import {
  checkPrepareTiming,
  DEFAULT_PREPARE_TIMING_RULES,
  type PrepareTimingRules,
} from "../core/corridor/prepare-check.js";
import { InvariantViolation } from "../core/invariant.js";
import type { IntersectionPlan } from "../core/model.js";
import { MAX_PENDING_PLANS } from "../core/sequencer.js";
import type { CorridorBody, CorridorEnvelope, DecisionRecord } from "../protocol/corridor-messages.js";
import { gatewayInbound } from "../protocol/gateway-inbox.js";
import type { Clock } from "../shell/clock.js";
import type { Logger } from "../shell/log.js";
import type { GatewayStore } from "../store/store.js";

/** How many of the newest committed transactions a restart looks through for changes not yet entered. */
const MAX_RESUME_SCAN = 64;

export interface CorridorSettings extends PrepareTimingRules {
  /** Our own knowledge of our clock's error (NTP/GPS), when the platform gives it; null: unknown. */
  readonly clockErrorMs: () => number | null;
}

export const DEFAULT_CORRIDOR_SETTINGS: CorridorSettings = {
  ...DEFAULT_PREPARE_TIMING_RULES,
  clockErrorMs: () => null,
};

export interface ParticipantHost {
  send(to: string, body: CorridorBody): void;
  schedulePlan(plan: IntersectionPlan, activationWallMs: number, txnId: string): void;
  /**
   * Why the controller could not take a plan change for this instant, or null when it can: its queue
   * of waiting changes is bounded, and a gateway that is stopping takes none.
   */
  planRefusal(activationWallMs: number): string | null;
  audit(type: string, actor: string | null, detail: Record<string, unknown>): void;
  changed(): void;
}

/**
 * The shell around this intersection's lease authority and 2PC participant: it checks each PREPARE
 * against the intersection (the signal core's own checks), force-writes what the machines say must be
 * durable before it sends anything that follows, and hands a committed plan to the controller.
 */
export class CorridorParticipant {
  private authority: LeaseAuthorityState;
  private participant: ParticipantState;
  /** Compiled plans of prepared transactions, by transaction id. */
  private readonly plans = new Map<string, IntersectionPlan>();
  /** Audit entries and status updates of the current step, done once its messages are sent. */
  private readonly afterStep: (() => void)[] = [];
  readonly counters = {
    prepares: 0,
    votesYes: 0,
    votesNo: 0,
    committed: 0,
    aborted: 0,
    invariantBreaches: 0,
    /** Transactions aborted here without having been prepared (answered inquiries about unknown ones). */
    refusals: 0,
  };
  /** The transaction in doubt when the current step began: its outcome is a change; any other is a refusal. */
  private preparedBeforeStep: string | null = null;

  constructor(
    private readonly setup: IntersectionSetup,
    private readonly store: GatewayStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly host: ParticipantHost,
    private readonly settings: CorridorSettings = DEFAULT_CORRIDOR_SETTINGS,
  ) {
    const started = startLeaseAuthority(store.leaseEpoch());
    this.authority = started.state;
    this.runAuthority(started.effects);
    this.participant = startParticipant(this.me, store.participantRecord(MAX_TOMBSTONES), clock.now().monoMs);
  }

  private get me(): string {
    return this.setup.intersection.intersection.id;
  }

  /**
   * After a restart: the committed changes not yet entered are handed to the controller again (one
   * whose instant has passed takes effect at the next cycle boundary, and reports its lateness).
   */
  resume(): void {
    const committed = this.store.committedTransactions(MAX_RESUME_SCAN);
    const due = committedToResume(
      committed,
      this.store.planInForce(),
      this.clock.now().wallMs,
      MAX_PENDING_PLANS,
    );
    for (const txn of due) {
      const plan = this.store.planBody(txn.plan.planId, txn.plan.version) as IntersectionPlan | null;
      if (plan) this.host.schedulePlan(plan, txn.activationWallMs, txn.txnId);
      else this.log.error({ txn }, "committed plan missing from the store: resolve by pushing it again");
    }
  }

  get lock(): { holder: string; token: number } | null {
    const lease = currentLease(this.authority, this.clock.now().monoMs);
    return lease ? { holder: lease.holder, token: lease.token } : null;
  }

  get inDoubt(): PreparedTxn | null {
    return this.participant.prepared;
  }

  onMessage(envelope: CorridorEnvelope): void {
    const inbound = gatewayInbound(envelope, this.participant.prepared?.coordinator ?? null);
    switch (inbound.kind) {
      case "authority":
        return this.authorityStep(inbound.event);
      case "prepare": {
        this.counters.prepares++;
        const body = envelope.body as Extract<CorridorBody, { type: "prepare" }>;
        const verdict = this.check(body, envelope.sentAtWallMs, this.clock.now().wallMs);
        return this.participantStep({
          type: "prepare",
          txn: inbound.txn,
          verdict,
          lastIssuedToken: fencingFloor(this.authority),
        });
      }
      case "participant":
        return this.participantStep(inbound.event);
      case "none":
        return; // a coordinator's message (this gateway's coordinator took its own)
    }
  }

  /** A coordinator's retained decision record (it may be gone for good). */
  onDecisionRecord(record: DecisionRecord): void {
    if (this.participant.prepared?.txnId !== record.txnId) return;
    this.participantStep({
      type: "decision",
      txnId: record.txnId,
      outcome: record.outcome,
      source: "peer",
      by: record.coordinator,
    });
  }

  /** An operator's resolution of a transaction whose coordinator is gone forever. */
  resolve(txnId: string, outcome: "committed" | "aborted", by: string): boolean {
    if (this.participant.prepared?.txnId !== txnId) return false;
    this.participantStep({ type: "decision", txnId, outcome, source: "operator", by });
    return true;
  }

  tick(): void {
    this.participantStep({ type: "tick" });
  }

  private check(
    body: Extract<CorridorBody, { type: "prepare" }>,
    sentAtWallMs: number,
    nowWallMs: number,
  ): PrepareVerdict {
    const timing = checkPrepareTiming(this.settings, {
      ownClockErrorMs: this.settings.clockErrorMs(),
      sentAtWallMs,
      nowWallMs,
      activationWallMs: body.activationWallMs,
    });
    if (!timing.ok) return timing;
    const refusal = this.host.planRefusal(body.activationWallMs);
    if (refusal !== null) return { ok: false, reason: refusal };
    try {
      const plan = loadPlanData(`PREPARE ${body.txnId}: plan ${body.plan.id}`, body.planFile, this.me);
      if (plan.raw.id !== body.plan.id || plan.raw.version !== body.plan.version)
        return {
          ok: false,
          reason: `the plan text is ${plan.raw.id} v${plan.raw.version}, not ${body.plan.id} v${body.plan.version}`,
        };
      const compiled = compileIntersectionPlan(
        this.setup.intersection.intersection,
        plan,
        this.setup.corridor,
      );
      this.plans.set(body.txnId, compiled);
      return { ok: true };
    } catch (error) {
      if (error instanceof ConfigError) return { ok: false, reason: error.message };
      // The plan came over the network: one that trips a bug in the checks is refused (a no vote),
      // never allowed to take the gateway and its lamps down. The log says what to report.
      this.log.error(
        { txnId: body.txnId, error: (error as Error).stack ?? String(error) },
        "checking a PREPARE's plan failed unexpectedly: voting no (please report)",
      );
      return { ok: false, reason: `internal error while checking the plan: ${(error as Error).message}` };
    }
  }

  private authorityStep(event: Parameters<typeof stepLeaseAuthority>[1]): void {
    const step = stepLeaseAuthority(this.authority, event, this.clock.now().monoMs);
    this.authority = step.state;
    this.runAuthority(step.effects);
    this.host.changed();
  }

  private runAuthority(effects: readonly LeaseAuthorityEffect[]): void {
    for (const effect of effects) {
      if (effect.type === "persist-epoch") {
        this.store.persistLeaseEpoch(effect.epoch);
        this.authority = stepLeaseAuthority(
          this.authority,
          { type: "epoch-durable" },
          this.clock.now().monoMs,
        ).state;
      } else this.host.send(effect.to, { type: "lease", reply: effect.reply });
    }
  }

  private participantStep(event: ParticipantEvent): void {
    this.preparedBeforeStep = this.participant.prepared?.txnId ?? null;
    let step;
    try {
      step = stepParticipant(this.participant, event, this.clock.now().monoMs);
    } catch (error) {
      if (!(error instanceof InvariantViolation)) throw error;
      // The protocol's own invariants: refuse the message, say why loudly; the lamps are not at stake.
      this.counters.invariantBreaches++;
      this.log.error({ event, error: error.message }, "corridor protocol invariant broken; message refused");
      this.host.audit("protocol-invariant", null, { message: error.message });
      return;
    }
    this.participant = step.state;
    for (const effect of step.effects) this.run(effect);
    // The audit trail and the status follow the protocol's messages rather than delay them: only the
    // forced writes the machine asked for stand between a message and its answer.
    for (const action of this.afterStep.splice(0)) action();
  }

  private run(effect: ParticipantEffect): void {
    const wall = this.clock.now().wallMs;
    switch (effect.type) {
      case "persist-prepared": {
        const plan = this.plans.get(effect.txn.txnId);
        this.store.persistPrepared(effect.txn, { body: plan ?? null }, effect.highestToken, wall);
        this.audit("txn-prepared", effect.txn.coordinator, {
          txnId: effect.txn.txnId,
          token: effect.txn.token,
          plan: effect.txn.plan,
        });
        this.changed();
        return;
      }
      case "persist-outcome":
        this.store.persistOutcome(effect.txnId, effect.outcome, wall);
        // A refusal of a transaction never prepared here (an inquiry about one we never heard of) is
        // not an aborted change of this intersection: not counted or audited as one, so that anyone
        // asking about made-up transactions cannot fill the audit trail and the metrics with them.
        if (effect.txnId !== this.preparedBeforeStep) {
          this.counters.refusals++;
          this.changed();
          return;
        }
        if (effect.outcome === "aborted") {
          this.counters.aborted++;
          this.audit("txn-aborted", null, { txnId: effect.txnId });
        }
        this.changed();
        return;
      case "vote":
        if (effect.yes) this.counters.votesYes++;
        else this.counters.votesNo++;
        if (!effect.yes) this.audit("txn-vote-no", effect.to, { txnId: effect.txnId, reason: effect.reason });
        this.host.send(effect.to, {
          type: "vote",
          txnId: effect.txnId,
          yes: effect.yes,
          reason: effect.reason,
        });
        return;
      case "ack":
        this.host.send(effect.to, { type: "ack", txnId: effect.txnId, outcome: effect.outcome });
        return;
      case "apply-plan": {
        this.counters.committed++;
        const plan =
          this.plans.get(effect.txn.txnId) ??
          (this.store.planBody(effect.txn.plan.planId, effect.txn.plan.version) as IntersectionPlan | null);
        this.plans.delete(effect.txn.txnId);
        this.audit("txn-committed", effect.txn.coordinator, {
          txnId: effect.txn.txnId,
          plan: effect.txn.plan,
          activationWallMs: effect.txn.activationWallMs,
        });
        if (!plan) {
          this.log.error(
            { txn: effect.txn },
            "committed plan missing from the store: resolve by pushing it again",
          );
          return;
        }
        this.afterStep.push(() =>
          this.host.schedulePlan(plan, effect.txn.activationWallMs, effect.txn.txnId),
        );
        return;
      }
      case "ask-decision":
        this.host.send(effect.txn.coordinator, { type: "inquiry", txnId: effect.txn.txnId });
        for (const peer of effect.txn.participants)
          if (peer !== this.me) this.host.send(peer, { type: "inquiry", txnId: effect.txn.txnId });
        return;
      case "answer-inquiry":
        this.host.send(effect.to, { type: "answer", txnId: effect.txnId, answer: effect.answer });
        return;
      case "report":
        this.log.warn(effect.message);
        this.audit("txn-report", null, { message: effect.message });
        return;
    }
  }

  private audit(type: string, actor: string | null, detail: Record<string, unknown>): void {
    this.afterStep.push(() => this.host.audit(type, actor, detail));
  }

  private changed(): void {
    this.afterStep.push(() => this.host.changed());
  }
}
