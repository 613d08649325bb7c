import {
  currentLease,
  fencingFloor,
  type LeaseAuthorityEffect,
  type LeaseAuthorityEvent,
  type LeaseAuthorityState,
  startLeaseAuthority,
  stepLeaseAuthority,
} from "../../core/corridor/lease.js";
import {
  MAX_TOMBSTONES,
  type Outcome,
  outcomeOf,
  type ParticipantEffect,
  type ParticipantEvent,
  type ParticipantState,
  type PrepareVerdict,
  type PreparedTxn,
  startParticipant,
  stepParticipant,
} from "../../core/corridor/participant.js";
import type { DecisionProof } from "../../core/corridor/decision-signature.js";
import { checkPlanIdentity } from "../../core/corridor/plan-identity.js";
import { cancelRefusal, cancelTarget } from "../../core/corridor/plan-cancel.js";
import { checkPrepareTiming } from "../../core/corridor/prepare-check.js";
import { committedToResume } from "../../core/corridor/resume.js";
import { InvariantViolation } from "../../core/invariant.js";
import { takeToken, type TokenBucket } from "../../core/token-bucket.js";
import type { IntersectionPlan } from "../../core/model.js";
import {
  type CommittedChange,
  isCompiledSchedule,
  scheduleKey,
} from "../../core/schedule/committed-change.js";
import { MAX_PENDING_PLANS } from "../../core/sequencer.js";
import {
  type CompiledKeyring,
  isKeyringKey,
  KEYRING_KEY,
  NO_TRUST_NO_KEYRING,
} from "../../core/corridor/keyring.js";
import { type CorridorEnvelope, voteReason } from "../../protocol/corridor-messages.js";
import { gatewayInbound } from "../../protocol/gateway-inbox.js";
import { checkDecision } from "./decision-keys.js";
import type { Clock } from "../clock.js";
import type {
  CorridorNetwork,
  CorridorSettings,
  ParticipantDisk,
  ParticipantLog,
  ParticipantShellHost,
  PlanCheck,
  PreparedChange,
  PrepareBody,
} from "./participant-ports.js";

/** A change the controller runs: a plan or a schedule, not a keyring (which the trust takes). */
function isRunnable(change: PreparedChange | null): change is CommittedChange {
  return change !== null && (change as { kind?: unknown }).kind !== "keyring";
}

/** How many of the newest committed transactions a restart looks through for changes not yet entered. */
const MAX_RESUME_SCAN = 64;

export interface ParticipantPorts {
  readonly me: string;
  readonly disk: ParticipantDisk;
  readonly network: CorridorNetwork;
  readonly clock: Clock;
  readonly planCheck: PlanCheck;
  readonly host: ParticipantShellHost;
  readonly log: ParticipantLog;
  readonly settings: CorridorSettings;
  /**
   * The participant machine's step: `stepParticipant`. Injectable so that the simulator can wrap it
   * with a deliberate bug (its mutations) without a switch for them in this file.
   */
  readonly step?: typeof stepParticipant;
}

/**
 * The one interpreter of this intersection's lease authority and 2PC participant, for the gateway, the
 * deterministic simulator and the tests alike. It checks each PREPARE (timing, the controller's room,
 * the plan), carries out the machines' effects in order — a forced write before anything that follows
 * it in the same step — and hands a committed plan to the controller. Starting it is a process start:
 * the authority begins a new epoch and the participant restores its record.
 */
/** Forced refusals per sender: 5 per second, 10 at once (see `ParticipantShell.mayRefuse`). */
const REFUSAL_BUDGET = { ratePerSecond: 5, burst: 10 } as const;
/** Senders whose refusal budget is remembered at once; past it the least recently seen is forgotten. */
const MAX_REFUSAL_SENDERS = 256;

export class ParticipantShell {
  private authority: LeaseAuthorityState;
  private participant: ParticipantState;
  /** Compiled plans of prepared transactions, by transaction id. */
  private readonly plans = new Map<string, PreparedChange>();
  /** Audit entries, status updates and plan hand-overs of the current step, done once its messages are sent. */
  private readonly afterStep: (() => void)[] = [];
  private readonly step: typeof stepParticipant;
  readonly counters = {
    prepares: 0,
    votesYes: 0,
    votesNo: 0,
    committed: 0,
    aborted: 0,
    invariantBreaches: 0,
    /** Transactions aborted here without having been prepared (answered inquiries about unknown ones). */
    refusals: 0,
    /** Inquiries about unknown transactions left unanswered: past their sender's refusal budget. */
    refusalsDeferred: 0,
  };
  /** Per sender: the budget of forced refusal writes (see `mayRefuse`). */
  private readonly refusalBudgets = new Map<string, TokenBucket>();
  /** The transaction in doubt when the current step began: its outcome is a change; any other is a refusal. */
  private preparedBeforeStep: string | null = null;

  constructor(private readonly ports: ParticipantPorts) {
    this.step = ports.step ?? stepParticipant;
    const started = startLeaseAuthority(ports.disk.leaseEpoch());
    this.authority = started.state;
    this.runAuthority(started.effects);
    this.participant = startParticipant(
      ports.me,
      ports.disk.participantRecord(MAX_TOMBSTONES),
      ports.clock.now().monoMs,
    );
  }

  /**
   * After a restart: the committed changes not yet entered are handed to the controller again (one
   * whose instant has passed takes effect at the next cycle boundary, and reports its lateness).
   */
  resume(): void {
    const { disk, clock, host, log } = this.ports;
    const committed = disk.committedTransactions(MAX_RESUME_SCAN);
    const due = committedToResume(committed, disk.planInForce(), clock.now().wallMs, MAX_PENDING_PLANS);
    // A change a prepared cancel may take back waits for the cancel's outcome (`persistPrepared`).
    const held = this.participant.prepared ? cancelTarget(this.participant.prepared.plan.planId) : null;
    for (const txn of due) {
      if (txn.txnId === held) continue;
      const plan = disk.planBody(txn.plan.planId, txn.plan.version);
      if (isRunnable(plan)) host.schedulePlan(plan, txn, true);
      else log.error({ txn }, "committed plan missing from the store: resolve by pushing it again");
    }
  }

  get lock(): { holder: string; token: number } | null {
    const lease = currentLease(this.authority, this.ports.clock.now().monoMs);
    return lease ? { holder: lease.holder, token: lease.token } : null;
  }

  /** The lease held now, with the request it was granted for (the transaction it belongs to). */
  private leaseNow(): { holder: string; token: number; requestId: string } | null {
    const lease = currentLease(this.authority, this.ports.clock.now().monoMs);
    return lease ? { holder: lease.holder, token: lease.token, requestId: lease.requestId } : null;
  }

  get inDoubt(): PreparedTxn | null {
    return this.participant.prepared;
  }

  /** The machines' states, read only: for status pages, the checker and the tests. */
  get participantState(): ParticipantState {
    return this.participant;
  }

  get authorityState(): LeaseAuthorityState {
    return this.authority;
  }

  onMessage(envelope: Pick<CorridorEnvelope, "from" | "to" | "sentAtWallMs" | "body">): void {
    const inbound = gatewayInbound(envelope, (txnId, outcome, signature) =>
      this.proofOf(txnId, outcome, signature),
    );
    switch (inbound.kind) {
      case "authority":
        return this.authorityStep(inbound.event);
      case "prepare": {
        this.counters.prepares++;
        const body = envelope.body as PrepareBody;
        return this.participantStep({
          type: "prepare",
          txn: inbound.txn,
          verdict: this.check(body, envelope.sentAtWallMs),
          lastIssuedToken: fencingFloor(this.authority),
          lease: this.leaseNow(),
        });
      }
      case "participant":
        if (inbound.event.type === "inquiry" && !this.mayRefuse(inbound.event.txnId, envelope.from)) {
          this.counters.refusalsDeferred++;
          return;
        }
        return this.participantStep(inbound.event);
      case "none":
        return; // a coordinator's message (this gateway's coordinator took its own)
    }
  }

  /**
   * An inquiry about a transaction this intersection never heard of costs a forced write (the refusal
   * must be durable before it is answered). Each sender gets a small budget of them; past it the
   * inquiry is left unanswered (its sender asks again after its back-off, or asks the coordinator),
   * so that nobody can make the gateway fsync — and its lamp loop wait — at a message rate. A peer in
   * doubt asks once per back-off (1–30 s) per transaction: far within the budget.
   */
  private mayRefuse(txnId: string, from: string): boolean {
    if (outcomeOf(this.participant, txnId) !== null) return true;
    const known = this.refusalBudgets.get(from);
    if (!known && this.refusalBudgets.size >= MAX_REFUSAL_SENDERS) {
      const oldest = this.refusalBudgets.keys().next().value as string;
      this.refusalBudgets.delete(oldest);
    }
    const { bucket, admitted } = takeToken(known, this.ports.clock.now().monoMs, REFUSAL_BUDGET);
    this.refusalBudgets.delete(from);
    this.refusalBudgets.set(from, bucket);
    return admitted;
  }

  /**
   * A retained decision record (its coordinator may be gone for good). `publishedBy`: the branch of the
   * topic it was retained under, which the broker's ACL vouches for — not the coordinator the record
   * names: a copy published by anyone else counts only with the coordinator's signature.
   */
  onDecisionRecord(
    record: { txnId: string; outcome: Outcome; signature?: string | undefined },
    publishedBy: string,
  ): void {
    if (this.participant.prepared?.txnId !== record.txnId) return;
    const signature = record.signature ?? null;
    this.participantStep({
      type: "decision",
      txnId: record.txnId,
      outcome: record.outcome,
      via: "record",
      by: publishedBy,
      signature,
      proof: this.proofOf(record.txnId, record.outcome, signature),
    });
  }

  /** An operator's resolution of a transaction whose coordinator is gone forever. */
  resolve(txnId: string, outcome: Outcome, by: string): boolean {
    if (this.participant.prepared?.txnId !== txnId) return false;
    this.participantStep({
      type: "decision",
      txnId,
      outcome,
      via: "operator",
      by,
      signature: null,
      proof: "absent",
    });
    return true;
  }

  /**
   * Does a decision's signature verify with the decision key of the transaction in doubt? Only that one
   * is checked (one Ed25519 verification, ~0.1 ms): about any other the participant's answer does not
   * depend on a signature.
   */
  private proofOf(txnId: string, outcome: Outcome, signature: string | null): DecisionProof {
    const txn = this.participant.prepared;
    if (txn?.txnId !== txnId) return "absent";
    return checkDecision(txn, txn.decisionKey ?? null, outcome, signature);
  }

  tick(): void {
    this.participantStep({ type: "tick" });
  }

  /**
   * Timing first (cheapest, and what a stale PREPARE fails), then the controller's room, then the plan,
   * then its signature (with trusted keys: plan-trust.ts), then its identity: one content per (id,
   * version) here (plan-identity.ts).
   */
  private check(body: PrepareBody, sentAtWallMs: number): PrepareVerdict {
    if (body.plan.kind === "cancel") return this.checkCancel(body, sentAtWallMs);
    if (body.plan.kind === "keyring") return this.checkKeyring(body, sentAtWallMs);
    const { settings, host, planCheck, disk } = this.ports;
    const timing = this.timing(sentAtWallMs, body.activationWallMs);
    if (!timing.ok) return timing;
    const refusal = host.planRefusal(body.activationWallMs);
    if (refusal !== null) return { ok: false, reason: refusal };
    const verdict = planCheck.check(body);
    if (!verdict.ok) return verdict;
    // Signed by a trusted key? Over this gateway's own digest of the content (never the PREPARE's claim).
    if (settings.planTrust) {
      const digest = (verdict.plan as { digest?: unknown }).digest;
      if (typeof digest !== "string")
        return {
          ok: false,
          reason: "no content digest could be computed here, so no signature can be checked",
        };
      const kind = isCompiledSchedule(verdict.plan) ? "schedule" : "plan";
      const signed = settings.planTrust.check(
        { kind, id: body.plan.id, version: body.plan.version, digest },
        body.signature ?? null,
      );
      if (!signed.ok) return signed;
    }
    const key = isCompiledSchedule(verdict.plan) ? scheduleKey(body.plan.id) : body.plan.id;
    const identity = checkPlanIdentity(
      {
        planId: body.plan.id,
        version: body.plan.version,
        claimedDigest: body.plan.digest ?? null,
        plan: verdict.plan as IntersectionPlan,
      },
      disk.planBody(key, body.plan.version) as IntersectionPlan | null,
    );
    if (!identity.ok) return identity;
    // A schedule's plans follow the plans' own rule: one content per (id, version) here.
    if (isCompiledSchedule(verdict.plan))
      for (const plan of Object.values(verdict.plan.plans)) {
        const known = disk.planBody(plan.planId, plan.version);
        const planIdentity = checkPlanIdentity(
          { planId: plan.planId, version: plan.version, claimedDigest: null, plan },
          isRunnable(known) && !isCompiledSchedule(known) ? known : null,
        );
        if (!planIdentity.ok) return planIdentity;
      }
    this.plans.set(body.txnId, verdict.plan);
    return { ok: true };
  }

  /**
   * A cancel (core/corridor/plan-cancel.ts): its target must be a change committed here and not yet
   * cancelled, and there must be time for the decision to reach every gateway before the target's own
   * instant — this gateway's record of it, never the PREPARE's claim — by the rule a plan change's
   * activation is held to. No plan, no signature of content: a cancel brings nothing new to run.
   */
  private checkCancel(body: PrepareBody, sentAtWallMs: number): PrepareVerdict {
    const { disk, me } = this.ports;
    const target = body.cancels ?? "";
    if (target === "") return { ok: false, reason: "a cancel that names no transaction to cancel" };
    const stored = disk.transactionRecord(target);
    const refusal = cancelRefusal(target, stored, me);
    if (refusal !== null || stored === null) return { ok: false, reason: refusal ?? "" };
    const timing = this.timing(sentAtWallMs, stored.activationWallMs);
    if (!timing.ok)
      return {
        ok: false,
        reason: `too late to cancel ${target} (its change takes effect at ${new Date(stored.activationWallMs).toISOString()}): ${timing.reason}`,
      };
    return { ok: true };
  }

  /**
   * The corridor's keyring (core/corridor/keyring.ts): the timing a plan change's is held to (the
   * decision must reach everyone), then its content and signatures against the keys trusted here now.
   * It waits for no cycle boundary: it is the trust from the commit on.
   */
  private checkKeyring(body: PrepareBody, sentAtWallMs: number): PrepareVerdict {
    const { settings, disk } = this.ports;
    const timing = this.timing(sentAtWallMs, body.activationWallMs);
    if (!timing.ok) return timing;
    if (!settings.planTrust) return { ok: false, reason: NO_TRUST_NO_KEYRING };
    const known = disk.planBody(KEYRING_KEY, body.plan.version) as CompiledKeyring | null;
    const verdict = settings.planTrust.checkKeyring(
      body.planFile,
      body.signatures ?? [],
      known && typeof known.digest === "string" ? { digest: known.digest } : null,
    );
    if (!verdict.ok) return verdict;
    // What the decision's signature will cover is the PREPARE's claim: it must be this content.
    if (verdict.keyring.version !== body.plan.version || body.plan.digest !== verdict.keyring.digest)
      return {
        ok: false,
        reason: `the PREPARE names keyring version ${body.plan.version} (digest ${body.plan.digest?.slice(0, 12) ?? "none"}…) but carries version ${verdict.keyring.version} (digest ${verdict.keyring.digest.slice(0, 12)}…)`,
      };
    this.plans.set(body.txnId, verdict.keyring);
    return { ok: true };
  }

  /** The timing rule every PREPARE is held to (prepare-check.ts), against this gateway's own clock. */
  private timing(sentAtWallMs: number, activationWallMs: number): PrepareVerdict {
    const { settings, clock } = this.ports;
    return checkPrepareTiming(settings, {
      ownClockErrorMs: settings.clockErrorMs(),
      sentAtWallMs,
      nowWallMs: clock.now().wallMs,
      activationWallMs,
    });
  }

  private authorityStep(event: LeaseAuthorityEvent): void {
    const step = stepLeaseAuthority(this.authority, event, this.ports.clock.now().monoMs);
    this.authority = step.state;
    this.runAuthority(step.effects);
    this.ports.host.changed();
  }

  private runAuthority(effects: readonly LeaseAuthorityEffect[]): void {
    for (const effect of effects) {
      if (effect.type === "persist-epoch") {
        this.ports.disk.persistLeaseEpoch(effect.epoch);
        this.authority = stepLeaseAuthority(
          this.authority,
          { type: "epoch-durable" },
          this.ports.clock.now().monoMs,
        ).state;
      } else this.ports.network.send(effect.to, { type: "lease", reply: effect.reply });
    }
  }

  private participantStep(event: ParticipantEvent): void {
    this.preparedBeforeStep = this.participant.prepared?.txnId ?? null;
    let step;
    try {
      step = this.step(this.participant, event, this.ports.clock.now().monoMs);
    } catch (error) {
      if (!(error instanceof InvariantViolation)) throw error;
      // The protocol's own invariants: refuse the message, say why loudly; the lamps are not at stake.
      this.counters.invariantBreaches++;
      this.ports.log.error(
        { event, error: error.message },
        "corridor protocol invariant broken; message refused",
      );
      this.ports.host.audit("protocol-invariant", null, { message: error.message });
      return;
    }
    this.participant = step.state;
    for (const effect of step.effects) this.run(effect);
    // The audit trail, the status and the controller follow the protocol's messages rather than delay
    // them: only the forced writes the machine asked for stand between a message and its answer.
    for (const action of this.afterStep.splice(0)) action();
    // Only the plan of the transaction in doubt can still be needed (a refused or finished one never):
    // the map stays bounded whatever is sent here.
    for (const txnId of this.plans.keys())
      if (txnId !== this.participant.prepared?.txnId) this.plans.delete(txnId);
  }

  private run(effect: ParticipantEffect): void {
    const { network, disk } = this.ports;
    switch (effect.type) {
      case "persist-prepared":
        return this.persistPrepared(effect);
      case "persist-outcome":
        disk.persistOutcome(
          effect.txnId,
          effect.outcome,
          effect.forced,
          this.ports.clock.now().wallMs,
          effect.signature,
        );
        this.countOutcome(effect.txnId, effect.outcome);
        if (effect.outcome === "aborted" && effect.txnId === this.preparedBeforeStep)
          this.cancelAborted(effect.txnId);
        return;
      case "vote":
        if (effect.yes) this.counters.votesYes++;
        else this.counters.votesNo++;
        if (!effect.yes) this.audit("txn-vote-no", effect.to, { txnId: effect.txnId, reason: effect.reason });
        return network.send(effect.to, {
          type: "vote",
          txnId: effect.txnId,
          yes: effect.yes,
          reason: voteReason(effect.reason),
        });
      case "ack":
        return network.send(effect.to, { type: "ack", txnId: effect.txnId, outcome: effect.outcome });
      case "apply-plan":
        return this.applyPlan(effect.txn);
      case "ask-decision":
        network.send(effect.txn.coordinator, { type: "inquiry", txnId: effect.txn.txnId });
        for (const peer of effect.txn.participants)
          if (peer !== this.ports.me) network.send(peer, { type: "inquiry", txnId: effect.txn.txnId });
        return;
      case "answer-inquiry":
        return network.send(effect.to, {
          type: "answer",
          txnId: effect.txnId,
          answer: effect.answer,
          ...(effect.signature !== null ? { signature: effect.signature } : {}),
        });
      case "report":
        this.ports.log.warn(effect.message);
        this.audit("txn-report", null, { message: effect.message });
        return;
    }
  }

  private persistPrepared(effect: Extract<ParticipantEffect, { type: "persist-prepared" }>): void {
    const { txn } = effect;
    const plan = this.plans.get(txn.txnId) ?? null;
    this.ports.disk.persistPrepared(txn, plan, effect.highestToken, this.ports.clock.now().wallMs);
    this.audit("txn-prepared", txn.coordinator, { txnId: txn.txnId, token: txn.token, plan: txn.plan });
    this.changed();
    // In doubt about a cancel, the change it may take back is held from the controller: entered now
    // and cancelled later, it would run here alone for good. If the cancel aborts, the change is handed
    // over again (a late one at its next cycle boundary, as any change learned late).
    const target = cancelTarget(txn.plan.planId);
    if (target !== null) this.afterStep.push(() => this.ports.host.withdrawPlan(target, false));
  }

  /** A cancel this gateway was in doubt about aborted: the change it held back is handed over again. */
  private cancelAborted(txnId: string): void {
    const record = this.ports.disk.transactionRecord(txnId);
    const target = record ? cancelTarget(record.planId) : null;
    if (target === null) return;
    const held = this.ports.disk.transactionRecord(target);
    if (held?.phase !== "committed" || held.cancelledBy !== null) return;
    // A change committed after it for the same instant superseded it: handed again, it would win.
    const newer = this.ports.disk.committedTransactions(MAX_RESUME_SCAN);
    const at = newer.findIndex((s) => s.txn.txnId === target);
    if (newer.slice(0, Math.max(at, 0)).some((s) => s.txn.activationWallMs === held.activationWallMs)) return;
    const plan = this.ports.disk.planBody(held.txn.plan.planId, held.txn.plan.version);
    if (isRunnable(plan)) this.afterStep.push(() => this.ports.host.schedulePlan(plan, held.txn, true));
  }

  private countOutcome(txnId: string, outcome: Outcome): void {
    // A refusal of a transaction never prepared here (an inquiry about one we never heard of) is not an
    // aborted change of this intersection: not counted or audited as one, so that anyone asking about
    // made-up transactions cannot fill the audit trail and the metrics with them.
    if (txnId !== this.preparedBeforeStep) this.counters.refusals++;
    else if (outcome === "aborted") {
      this.counters.aborted++;
      this.audit("txn-aborted", null, { txnId });
    }
    this.changed();
  }

  private applyPlan(txn: PreparedTxn): void {
    this.counters.committed++;
    const cancelled = cancelTarget(txn.plan.planId);
    if (cancelled !== null) {
      // The store marked the target cancelled with this commit (one forced write): a restart does
      // not hand it over again. Now the controller (and the schedule) let it go.
      this.audit("txn-cancelled", txn.coordinator, { txnId: cancelled, by: txn.txnId });
      this.afterStep.push(() => this.ports.host.withdrawPlan(cancelled, true));
      return;
    }
    if (isKeyringKey(txn.plan.planId)) {
      // The store took it as the keyring in force with the commit's forced write: trusted from now on.
      this.plans.delete(txn.txnId);
      this.audit("keyring-adopted", txn.coordinator, { txnId: txn.txnId, version: txn.plan.version });
      this.changed();
      return;
    }
    const plan = this.plans.get(txn.txnId) ?? this.ports.disk.planBody(txn.plan.planId, txn.plan.version);
    this.plans.delete(txn.txnId);
    this.audit("txn-committed", txn.coordinator, {
      txnId: txn.txnId,
      plan: txn.plan,
      activationWallMs: txn.activationWallMs,
    });
    if (!isRunnable(plan)) {
      this.ports.log.error({ txn }, "committed plan missing from the store: resolve by pushing it again");
      return;
    }
    this.afterStep.push(() => this.ports.host.schedulePlan(plan, txn, false));
  }

  private audit(type: string, actor: string | null, detail: Record<string, unknown>): void {
    this.afterStep.push(() => this.ports.host.audit(type, actor, detail));
  }

  private changed(): void {
    this.afterStep.push(() => this.ports.host.changed());
  }
}
