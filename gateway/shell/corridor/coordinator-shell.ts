import {
  type CoordinatorEffect,
  type CoordinatorEvent,
  type CoordinatorState,
  resumeCommitted,
  stepCoordinator,
} from "../../core/corridor/coordinator.js";
import type { Outcome } from "../../core/corridor/participant.js";
import { bareId, isScheduleKey } from "../../core/schedule/committed-change.js";
import { invariant } from "../../core/invariant.js";
import { cancelTarget } from "../../core/corridor/plan-cancel.js";
import type { CorridorBody } from "../../protocol/corridor-messages.js";
import type { WireSignature } from "../../core/corridor/plan-signature.js";
import { isKeyringKey, KEYRING_ID } from "../../core/corridor/keyring.js";

/** What a PREPARE carries to prove its content: a plan's or schedule's signature, a keyring's signatures, or none. */
export type ContentSignature = WireSignature | readonly WireSignature[] | null;

function isSignatureList(signature: ContentSignature): signature is readonly WireSignature[] {
  return Array.isArray(signature);
}
import type { CommitRecord, CoordinatorPorts } from "./coordinator-ports.js";
import { type DecisionKeyPair, newDecisionKeyPair, signDecision } from "./decision-keys.js";

/** Fault injection for tests and drills: the coordinator "dies" right after sending every PREPARE, or right after forcing its commit. */
export type HaltAfter = "prepare-sent" | "commit-forced";

/** At most this many transactions run at once under one coordinator (its own push and resumed ones). */
const MAX_COORDINATOR_RUNS = 16;

/**
 * One coordinator machine run until it finishes (or, once committed, until its host stops waiting):
 * carries out its effects in order — the forced commit before any COMMIT leaves, and the retained
 * committed record once the step's COMMITs have left. Its decision is signed with a key pair of its own
 * (core/corridor/decision-signature.ts), whose public half goes with every PREPARE: every copy of the
 * decision — COMMIT or ABORT, answer, retained record — carries the signature.
 */
export class CoordinatorRun {
  finished: { outcome: Outcome; reason: string | null } | null = null;
  halted = false;
  /** The decision's signature, once made (a run resumed from the log starts with its commit's). */
  private readonly signatures = new Map<Outcome, string>();
  private done: () => void = () => {};
  readonly ended = new Promise<void>((resolve) => {
    this.done = resolve;
  });

  constructor(
    private readonly ports: CoordinatorPorts,
    public state: CoordinatorState,
    /** The plan file's content, sent with every PREPARE (null for a run resumed from the log). */
    private readonly planFile: unknown,
    private readonly haltAfter: HaltAfter | null,
    /**
     * The content's signature (`greenwave plan sign`), sent with every PREPARE; a keyring's signatures
     * (core/corridor/keyring.ts); null: unsigned.
     */
    private readonly signature: ContentSignature = null,
    /** The run's decision key pair; null for a run resumed from the log (it holds its commit's signature). */
    private readonly decisionKeys: DecisionKeyPair | null = null,
    loggedSignature: string | null = null,
  ) {
    if (loggedSignature !== null) this.signatures.set("committed", loggedSignature);
  }

  /**
   * The signature of this run's decision: made once, when first needed (the commit's before the commit
   * record is forced, so that it is written with it). Null only for a run resumed from a log of an older
   * release, or asked for an outcome it cannot sign (a resumed run was committed).
   */
  private signatureOf(outcome: Outcome): string | null {
    const made = this.signatures.get(outcome);
    if (made !== undefined) return made;
    if (this.decisionKeys === null) return null;
    invariant(
      !this.signatures.has(outcome === "committed" ? "aborted" : "committed"),
      () => `transaction ${this.state.txnId}: both outcomes were about to be signed`,
    );
    const s = this.state;
    const signature = signDecision(
      this.decisionKeys,
      { txnId: s.txnId, coordinator: this.ports.me, plan: s.plan, activationWallMs: s.activationWallMs },
      outcome,
    );
    this.signatures.set(outcome, signature);
    return signature;
  }

  /** A signature as a message's optional field. */
  private signed(outcome: Outcome): { signature?: string } {
    const signature = this.signatureOf(outcome);
    return signature !== null ? { signature } : {};
  }

  step(event: CoordinatorEvent): void {
    if (this.halted) return;
    const now = this.ports.clock.now();
    const before = this.state;
    const step = (this.ports.step ?? stepCoordinator)(this.state, event, now.monoMs);
    this.state = step.state;
    let retainCommit = false;
    for (const effect of step.effects) {
      this.run(effect, before, now.wallMs);
      if (effect.type !== "persist-commit") continue;
      if (this.haltAfter === "commit-forced") return this.halt();
      retainCommit = true;
    }
    if (
      this.haltAfter === "prepare-sent" &&
      step.effects.some((e) => e.type === "send" && e.message.type === "prepare")
    )
      return this.halt();
    // After the COMMITs of this step have left: participants normally hear the coordinator first.
    if (retainCommit) this.retain("committed");
  }

  private halt(): void {
    this.halted = true;
    this.done();
  }

  private record(): CommitRecord {
    const s = this.state;
    return {
      txnId: s.txnId,
      participants: s.participants,
      plan: s.plan,
      activationWallMs: s.activationWallMs,
      tokens: {},
    };
  }

  private run(effect: CoordinatorEffect, before: CoordinatorState, wallMs: number): void {
    const { network, log } = this.ports;
    switch (effect.type) {
      case "send":
        return network.send(effect.to, this.body(effect.message));
      case "persist-commit": {
        const tokens = Object.fromEntries(
          Object.entries(before.leases).map(([id, lease]) => [id, lease.token]),
        );
        const { txnId, participants, plan, activationWallMs } = effect;
        return log.persistCommit(
          { txnId, participants, plan, activationWallMs, tokens, ...this.signed("committed") },
          wallMs,
        );
      }
      case "persist-end":
        log.persistEnd({ ...this.record(), outcome: effect.outcome, ...this.signed(effect.outcome) }, wallMs);
        if (effect.outcome === "aborted") this.retain("aborted");
        return;
      case "answer":
        return network.send(effect.to, {
          type: "answer",
          txnId: effect.txnId,
          answer: effect.outcome,
          ...this.signed(effect.outcome),
        });
      case "finished":
        this.finished = { outcome: effect.outcome, reason: effect.reason };
        this.ports.finished?.(this.state.txnId, effect.outcome, effect.reason);
        this.done();
        return;
    }
  }

  /** A machine's message as it travels on the wire: a PREPARE carries the plan file and the decision key; a decision its signature. */
  private body(m: Extract<CoordinatorEffect, { type: "send" }>["message"]): CorridorBody {
    if (m.type === "decision") return { ...m, ...this.signed(m.outcome) };
    if (m.type !== "prepare") return m;
    const { txn } = m;
    // A cancel (core/corridor/plan-cancel.ts) names its target and carries no plan.
    const cancels = cancelTarget(txn.plan.planId);
    const change =
      cancels !== null
        ? { plan: { id: "cancel", version: 0, kind: "cancel" as const }, planFile: null, cancels }
        : {
            plan: {
              id: isKeyringKey(txn.plan.planId) ? KEYRING_ID : bareId(txn.plan.planId),
              version: txn.plan.version,
              ...(txn.plan.digest !== undefined ? { digest: txn.plan.digest } : {}),
              ...(isScheduleKey(txn.plan.planId) ? { kind: "schedule" as const } : {}),
              ...(isKeyringKey(txn.plan.planId) ? { kind: "keyring" as const } : {}),
              ...(txn.plan.until !== undefined ? { until: txn.plan.until } : {}),
            },
            planFile: this.planFile,
            ...(this.signature === null
              ? {}
              : isSignatureList(this.signature)
                ? { signatures: [...this.signature] }
                : { signature: this.signature }),
          };
    return {
      type: "prepare",
      txnId: txn.txnId,
      token: txn.token,
      participants: [...txn.participants],
      ...change,
      activationWallMs: txn.activationWallMs,
      ...(this.decisionKeys ? { decisionKey: this.decisionKeys.publicKey } : {}),
    };
  }

  /** The decision, retained, for participants that ask after this coordinator is gone. */
  private retain(outcome: Outcome): void {
    const { txnId, participants, activationWallMs } = this.state;
    this.ports.retain({ txnId, outcome, participants, activationWallMs, ...this.signed(outcome) });
  }
}

/**
 * The one interpreter of the coordinator machine, for `greenwave plan push`, a gateway acting as
 * coordinator and the deterministic simulator: its runs, ticking, fed from its inbox, and the committed
 * transactions of its log resumed (a restarted coordinator finishes them).
 */
export class CoordinatorShell {
  private current: CoordinatorRun[] = [];

  constructor(readonly ports: CoordinatorPorts) {}

  /** The runs not yet done. */
  get runs(): readonly CoordinatorRun[] {
    return this.current.filter((r) => r.state.phase !== "done" && !r.halted);
  }

  begin(
    state: CoordinatorState,
    planFile: unknown,
    haltAfter?: HaltAfter | null,
    signature?: ContentSignature,
  ): CoordinatorRun {
    const keys = this.ports.newDecisionKeys?.(state.txnId) ?? newDecisionKeyPair();
    return this.start(
      new CoordinatorRun(this.ports, state, planFile, haltAfter ?? null, signature ?? null, keys),
    );
  }

  /** Every run, new or resumed, within the bound of runs at once, and started. */
  private start(run: CoordinatorRun): CoordinatorRun {
    this.current = [...this.runs];
    invariant(
      this.current.length < MAX_COORDINATOR_RUNS,
      () => `coordinator ${this.ports.me} already runs ${MAX_COORDINATOR_RUNS} transactions`,
    );
    this.current.push(run);
    run.step({ type: "start" });
    return run;
  }

  /** Resumes every committed transaction of its log that is not yet acknowledged by all. */
  resumeLog(): CoordinatorRun[] {
    return this.ports.log
      .unfinished()
      .filter((record) => !this.current.some((r) => r.state.txnId === record.txnId))
      .map((record) => this.resume(record));
  }

  /** A committed transaction of the log, finished again: its COMMIT carries the signature logged with it. */
  private resume(record: CommitRecord): CoordinatorRun {
    const state = resumeCommitted(this.ports.config, { ...record, coordinator: this.ports.me });
    return this.start(
      new CoordinatorRun(this.ports, state, null, null, null, null, record.signature ?? null),
    );
  }

  tick(): void {
    for (const run of [...this.current]) run.step({ type: "tick", random01: this.ports.random01() });
    // A finished run's questions are the log's to answer from now on (presumed abort for the rest); a
    // halted one, "dead", keeps swallowing its messages until the next run begins.
    this.current = this.current.filter((r) => r.halted || r.state.phase !== "done");
  }

  /**
   * Takes a corridor message if it is the coordinator's: lease replies, votes, acknowledgements, and
   * inquiries about its own transactions (about others too when `presumeAbort`: what its log does not
   * hold was aborted). False: not the coordinator's (a gateway's participant takes it).
   */
  receive(envelope: { readonly from: string; readonly body: CorridorBody }, presumeAbort: boolean): boolean {
    const { from, body } = envelope;
    if (body.type !== "lease" && body.type !== "vote" && body.type !== "ack" && body.type !== "inquiry")
      return false;
    const txnOf = "txnId" in body ? body.txnId : null;
    const target = this.current.find((r) =>
      txnOf ? r.state.txnId === txnOf : r.state.phase !== "done" && r.state.participants.includes(from),
    );
    if (!target) {
      if (body.type !== "inquiry") return true;
      const logged = this.ports.log.decisionOf(body.txnId);
      if (logged === null && !presumeAbort) return false;
      // What the log does not hold was aborted (presumed abort): said by this coordinator itself,
      // unsigned (the run's key is gone), which a participant takes from its coordinator only.
      this.ports.network.send(from, {
        type: "answer",
        txnId: body.txnId,
        answer: logged?.outcome ?? "aborted",
        ...(logged?.signature ? { signature: logged.signature } : {}),
      });
      return true;
    }
    switch (body.type) {
      case "lease":
        target.step({ type: "lease-reply", from, reply: body.reply });
        break;
      case "vote": {
        const vote = body.yes
          ? { yes: true as const }
          : { yes: false as const, reason: body.reason ?? "no reason given" };
        target.step({ type: "vote", from, txnId: body.txnId, vote });
        break;
      }
      case "ack":
        target.step({ type: "ack", from, txnId: body.txnId, outcome: body.outcome });
        break;
      case "inquiry":
        target.step({ type: "inquiry", from, txnId: body.txnId });
        break;
    }
    return true;
  }
}
