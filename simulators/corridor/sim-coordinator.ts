import {
  type CoordinatorConfig,
  type CoordinatorEffect,
  type CoordinatorEvent,
  type CoordinatorState,
  resumeCommitted,
  startCoordinator,
  stepCoordinator,
} from "../../gateway/core/corridor/coordinator.js";
import type { Outcome } from "../../gateway/core/corridor/participant.js";
import type { CorridorBody } from "../../gateway/protocol/corridor-messages.js";
import type { InvariantChecker } from "./checker.js";
import type { LocalClock } from "./local-clock.js";
import type { Mutation } from "./mutations.js";
import type { RetainedDecision, SimEnvelope } from "./network.js";
import type { SeededRandom } from "./random.js";

export interface CoordinatorContext {
  readonly trueNow: () => number;
  readonly random: SeededRandom;
  readonly send: (envelope: SimEnvelope) => void;
  readonly retain: (record: RetainedDecision) => void;
  readonly checker: InvariantChecker;
  readonly trace: (line: string) => void;
  readonly mutation: Mutation | null;
  readonly config: CoordinatorConfig;
  /** Fault injection at the protocol's critical points: true means "crash right here". */
  readonly crashHere: (party: string, point: string) => boolean;
}

/** A commit record in the coordinator's log (forced), with the tokens it prepared with. */
interface CommitRecord {
  readonly txnId: string;
  readonly participants: readonly string[];
  readonly plan: { readonly planId: string; readonly version: number };
  readonly activationWallMs: number;
  readonly tokens: Readonly<Record<string, number>>;
}

export interface PushRequest {
  readonly txnId: string;
  readonly participants: readonly string[];
  readonly plan: { readonly planId: string; readonly version: number };
  readonly activationWallMs: number;
}

/**
 * A coordinator in the simulation (an operator's `plan push`, or a gateway acting as one): the real
 * coordinator machine, wired the way gateway/operator/plan-push.ts wires it, with a log whose commit
 * records are forced and whose end records are lazy (a crash may lose them).
 */
export class SimCoordinator {
  up = true;
  private runs: CoordinatorState[] = [];
  private readonly commits = new Map<string, CommitRecord>();
  private readonly ends = new Map<string, Outcome>();
  private toRetain: RetainedDecision | null = null;
  /** End records written since the last forced write: a crash may lose them. */
  private unsyncedEnds: string[] = [];

  constructor(
    readonly id: string,
    readonly clock: LocalClock,
    private readonly ctx: CoordinatorContext,
  ) {}

  private mono(): number {
    return this.clock.read(this.ctx.trueNow()).monoMs;
  }

  wallNow(): number {
    return this.clock.read(this.ctx.trueNow()).wallMs;
  }

  /** True while a push of its own is under way (resumed logs do not count). */
  busy(): boolean {
    return this.runs.some((r) => r.phase !== "done" && r.phase !== "committing");
  }

  active(): readonly CoordinatorState[] {
    return this.runs.filter((r) => r.phase !== "done");
  }

  push(request: PushRequest): void {
    const state = startCoordinator(this.ctx.config, { ...request, coordinator: this.id });
    this.ctx.checker.txnStarted(state);
    this.ctx.trace(
      `${this.id} pushes ${request.txnId}: ${request.plan.planId} to ${state.participants.join(",")} at ${request.activationWallMs}`,
    );
    this.runs.push(state);
    this.step(state.txnId, { type: "start" });
  }

  crash(): void {
    this.up = false;
    this.toRetain = null;
    this.runs = [];
    const kept = this.ctx.random.int(0, this.unsyncedEnds.length);
    for (const txnId of this.unsyncedEnds.slice(kept)) this.ends.delete(txnId);
    this.unsyncedEnds = [];
    this.ctx.trace(`${this.id} CRASH`);
  }

  /** A restarted coordinator finishes every committed transaction of its log. */
  restart(): void {
    this.up = true;
    this.ctx.trace(`${this.id} restart`);
    for (const record of this.commits.values()) {
      if (this.ends.has(record.txnId)) continue;
      this.runs.push(resumeCommitted(this.ctx.config, { ...record, coordinator: this.id }));
      this.step(record.txnId, { type: "start" });
    }
  }

  tick(): void {
    if (!this.up) return;
    for (const run of [...this.runs])
      this.step(run.txnId, { type: "tick", random01: this.ctx.random.next() });
    this.runs = this.runs.filter((r) => r.phase !== "done");
  }

  receive(envelope: SimEnvelope): void {
    if (!this.up) return;
    const { from, body } = envelope;
    const txnOf = "txnId" in body ? body.txnId : null;
    const target = this.runs.find((r) =>
      txnOf ? r.txnId === txnOf : r.phase !== "done" && r.participants.includes(from),
    );
    if (!target) {
      // Presumed abort: an inquiry about a transaction this log does not hold (or holds as aborted).
      if (body.type === "inquiry") {
        const committed = this.commits.has(body.txnId) && this.ends.get(body.txnId) !== "aborted";
        this.send(from, { type: "answer", txnId: body.txnId, answer: committed ? "committed" : "aborted" });
      }
      return;
    }
    switch (body.type) {
      case "lease":
        return this.step(target.txnId, { type: "lease-reply", from, reply: body.reply });
      case "vote":
        return this.step(target.txnId, {
          type: "vote",
          from,
          txnId: body.txnId,
          vote: body.yes ? { yes: true } : { yes: false, reason: body.reason ?? "no reason given" },
        });
      case "ack":
        return this.step(target.txnId, { type: "ack", from, txnId: body.txnId, outcome: body.outcome });
      case "inquiry":
        return this.step(target.txnId, { type: "inquiry", from, txnId: body.txnId });
      default:
        return;
    }
  }

  private send(to: string, body: CorridorBody): void {
    this.ctx.send({ from: this.id, to, sentAtWallMs: this.wallNow(), body });
  }

  private step(txnId: string, event: CoordinatorEvent): void {
    const index = this.runs.findIndex((r) => r.txnId === txnId);
    const before = this.runs[index];
    if (!before) return;
    const step = stepCoordinator(before, event, this.mono());
    this.runs[index] = step.state;
    for (const effect of step.effects) {
      this.run(effect, before, step.state);
      const critical =
        effect.type === "persist-commit" ||
        (effect.type === "send" &&
          effect.message.type === "decision" &&
          effect.message.outcome === "committed");
      if (
        critical &&
        this.ctx.crashHere(
          this.id,
          `after ${effect.type === "send" ? `COMMIT to ${effect.to}` : "forcing the commit"}`,
        )
      )
        return;
    }
  }

  private run(effect: CoordinatorEffect, before: CoordinatorState, after: CoordinatorState): void {
    switch (effect.type) {
      case "send": {
        const m = effect.message;
        if (m.type === "prepare")
          return this.send(effect.to, {
            type: "prepare",
            txnId: m.txn.txnId,
            token: m.txn.token,
            participants: [...m.txn.participants],
            plan: { id: m.txn.plan.planId, version: m.txn.plan.version },
            planFile: null,
            activationWallMs: m.txn.activationWallMs,
          });
        return this.send(effect.to, m);
      }
      case "persist-commit": {
        const tokens = Object.fromEntries(Object.entries(before.leases).map(([id, l]) => [id, l.token]));
        if (this.ctx.mutation !== "skip-forced-commit")
          this.commits.set(effect.txnId, {
            txnId: effect.txnId,
            participants: effect.participants,
            plan: effect.plan,
            activationWallMs: effect.activationWallMs,
            tokens,
          });
        // A forced write: earlier lazy end records are durable too.
        this.unsyncedEnds = [];
        this.ctx.checker.decided(effect.txnId, "committed");
        // Published once the COMMITs of this step have left (as plan-push.ts does).
        this.toRetain = { txnId: effect.txnId, coordinator: this.id, outcome: "committed" };
        return;
      }
      case "persist-end":
        this.ends.set(effect.txnId, effect.outcome);
        this.unsyncedEnds.push(effect.txnId);
        if (effect.outcome === "aborted") {
          this.ctx.checker.decided(effect.txnId, "aborted");
          this.ctx.retain({ txnId: effect.txnId, coordinator: this.id, outcome: "aborted" });
        }
        return;
      case "answer":
        return this.send(effect.to, { type: "answer", txnId: effect.txnId, answer: effect.outcome });
      case "finished":
        this.ctx.trace(
          `${this.id} ${after.txnId} ${effect.outcome}${effect.reason ? `: ${effect.reason}` : ""}`,
        );
        return;
    }
  }
}
