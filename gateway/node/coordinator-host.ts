import { randomBytes } from "node:crypto";
import type { PlanFile } from "../config/schema.js";
import { nextCommonBoundary } from "../core/corridor/boundary.js";
import {
  type CoordinatorConfig,
  type CoordinatorEffect,
  type CoordinatorEvent,
  type CoordinatorState,
  resumeCommitted,
  startCoordinator,
  stepCoordinator,
} from "../core/corridor/coordinator.js";
import { invariant } from "../core/invariant.js";
import {
  type CorridorBody,
  type CorridorEnvelope,
  decisionTopic,
  inboxTopic,
} from "../protocol/corridor-messages.js";
import { PROTOCOL_VERSION } from "../protocol/topics.js";
import { systemClock } from "../shell/clock.js";
import type { CoordinatorStore } from "../store/coordinator-store.js";

/**
 * The shell around the pure coordinator machine: its runs, their effects (the forced commit before
 * any COMMIT leaves), its inbox and its log. Transport-agnostic: `greenwave plan push` drives it over
 * its own MQTT client, a gateway acting as coordinator over its session.
 */

/** Fault injection for tests and drills: the coordinator "dies" right after sending every PREPARE, or right after forcing its commit. */
export type HaltAfter = "prepare-sent" | "commit-forced";

export interface PushResult {
  readonly txnId: string;
  readonly corridor: string;
  readonly plan: { readonly id: string; readonly version: number };
  readonly outcome: "committed" | "aborted" | "halted";
  readonly reason: string | null;
  readonly activationAt: string;
  readonly votes: readonly {
    readonly intersection: string;
    readonly vote: "yes" | "no" | "none";
    readonly reason: string | null;
  }[];
  /** Participants that had not acknowledged the commit when the command gave up waiting (they will ask). */
  readonly unacknowledged: readonly string[];
  readonly durationMs: number;
}

function newTxnId(name: string, wallMs: number): string {
  return `${name}-${wallMs.toString(36)}-${randomBytes(4).toString("hex")}`;
}

/** How a coordinator's messages leave: a plan-push command's own client, or a gateway's session. */
export type Publish = (topic: string, payload: string, options: { retain?: boolean }) => void;

/** What one run needs besides the broker: its log, its clock, the plan it prepares (none when resumed). */
interface RunContext {
  readonly store: CoordinatorStore;
  readonly now: () => { monoMs: number; wallMs: number };
  readonly haltAfter?: HaltAfter;
  readonly planFile: unknown;
}

/**
 * Runs one coordinator machine until it finishes (or, once committed, until the ack timeout): carries
 * out its effects in order — the forced commit before any COMMIT leaves.
 */
class CoordinatorRun {
  state: CoordinatorState;
  finished: { outcome: "committed" | "aborted"; reason: string | null } | null = null;
  halted = false;
  private done: () => void = () => {};
  readonly ended = new Promise<void>((resolve) => {
    this.done = resolve;
  });

  constructor(
    private readonly publish: Publish,
    private readonly context: RunContext,
    private readonly me: string,
    state: CoordinatorState,
    private readonly corridorId: string,
  ) {
    this.state = state;
  }

  step(event: CoordinatorEvent): void {
    if (this.halted) return;
    const now = this.context.now();
    const before = this.state;
    const step = stepCoordinator(this.state, event, now.monoMs);
    this.state = step.state;
    for (const effect of step.effects) {
      this.run(effect, before, now.wallMs);
      if (this.context.haltAfter === "commit-forced" && effect.type === "persist-commit") return this.halt();
    }
    if (
      this.context.haltAfter === "prepare-sent" &&
      step.effects.some((e) => e.type === "send" && e.message.type === "prepare")
    )
      this.halt();
  }

  private halt(): void {
    this.halted = true;
    this.done();
  }

  private send(to: string, body: CorridorBody, wallMs: number): void {
    const envelope = { v: PROTOCOL_VERSION, from: this.me, to, sentAtWallMs: wallMs, body };
    this.publish(inboxTopic(this.corridorId, to, this.me), JSON.stringify(envelope), {});
  }

  private run(effect: CoordinatorEffect, before: CoordinatorState, wallMs: number): void {
    switch (effect.type) {
      case "send": {
        const m = effect.message;
        if (m.type === "prepare")
          this.send(
            effect.to,
            {
              type: "prepare",
              txnId: m.txn.txnId,
              token: m.txn.token,
              participants: [...m.txn.participants],
              plan: { id: m.txn.plan.planId, version: m.txn.plan.version },
              planFile: this.context.planFile,
              activationWallMs: m.txn.activationWallMs,
            },
            wallMs,
          );
        else this.send(effect.to, m, wallMs);
        return;
      }
      case "persist-commit": {
        const tokens = Object.fromEntries(
          Object.entries(before.leases).map(([id, lease]) => [id, lease.token]),
        );
        this.context.store.persistCommit(
          {
            txnId: effect.txnId,
            corridor: this.corridorId,
            coordinator: this.me,
            participants: effect.participants,
            planId: effect.plan.planId,
            planVersion: effect.plan.version,
            activationWallMs: effect.activationWallMs,
            tokens,
          },
          wallMs,
        );
        // After the COMMITs of this step have left: participants normally hear the coordinator first.
        setImmediate(() => {
          if (!this.halted) this.publishRecord("committed");
        });
        return;
      }
      case "persist-end": {
        const s = this.state;
        this.context.store.persistEnd(
          {
            txnId: effect.txnId,
            corridor: this.corridorId,
            coordinator: this.me,
            participants: s.participants,
            planId: s.plan.planId,
            planVersion: s.plan.version,
            activationWallMs: s.activationWallMs,
            tokens: {},
            outcome: effect.outcome,
          },
          wallMs,
        );
        if (effect.outcome === "aborted") this.publishRecord("aborted");
        return;
      }
      case "answer":
        this.send(effect.to, { type: "answer", txnId: effect.txnId, answer: effect.outcome }, wallMs);
        return;
      case "finished":
        this.finished = { outcome: effect.outcome, reason: effect.reason };
        this.done();
        return;
    }
  }

  /** The decision, retained, for participants that ask after this command is gone. */
  private publishRecord(outcome: "committed" | "aborted"): void {
    const s = this.state;
    this.publish(
      decisionTopic(this.corridorId, this.me, s.txnId),
      JSON.stringify({
        v: PROTOCOL_VERSION,
        txnId: s.txnId,
        coordinator: this.me,
        outcome,
        participants: s.participants,
        activationWallMs: s.activationWallMs,
      }),
      { retain: true },
    );
  }
}

/** At most this many transactions run at once under one coordinator (its own push and resumed ones). */
const MAX_COORDINATOR_RUNS = 16;

/**
 * A coordinator on the broker, whatever carries its messages: its runs, ticking, fed from its inbox,
 * and the committed transactions of its log resumed (a restarted coordinator finishes them). Used by
 * `greenwave plan push` (party `@name`) and by a gateway acting as coordinator (party = its id).
 */
export class CoordinatorHost {
  private runs: CoordinatorRun[] = [];

  constructor(
    readonly me: string,
    readonly corridorId: string,
    readonly config: CoordinatorConfig,
    private readonly store: CoordinatorStore,
    private readonly publish: Publish,
    readonly now: () => { monoMs: number; wallMs: number } = () => systemClock.now(),
  ) {}

  begin(state: CoordinatorState, planFile: unknown, haltAfter?: HaltAfter): CoordinatorRun {
    this.runs = this.runs.filter((r) => r.state.phase !== "done" && !r.halted);
    invariant(
      this.runs.length < MAX_COORDINATOR_RUNS,
      () => `coordinator ${this.me} already runs ${MAX_COORDINATOR_RUNS} transactions`,
    );
    const context = { store: this.store, planFile, now: this.now, ...(haltAfter ? { haltAfter } : {}) };
    const run = new CoordinatorRun(this.publish, context, this.me, state, this.corridorId);
    this.runs.push(run);
    run.step({ type: "start" });
    return run;
  }

  /** Resumes every committed transaction of its log for this corridor that is not yet acknowledged by all. */
  resumeLog(): CoordinatorRun[] {
    return this.store
      .unfinished()
      .filter((entry) => entry.corridor === this.corridorId && entry.coordinator === this.me)
      .filter((entry) => !this.runs.some((r) => r.state.txnId === entry.txnId))
      .map((entry) =>
        this.begin(
          resumeCommitted(this.config, {
            ...entry,
            plan: { planId: entry.planId, version: entry.planVersion },
          }),
          null,
        ),
      );
  }

  tick(): void {
    for (const run of this.runs) run.step({ type: "tick", random01: Math.random() });
  }

  /**
   * Takes a corridor message if it is the coordinator's: lease replies, votes, acknowledgements, and
   * inquiries about its own transactions (about others too when `presumeAbort`: what its log does not
   * hold was aborted). False: not the coordinator's (a gateway's participant takes it).
   */
  receive(envelope: CorridorEnvelope, presumeAbort: boolean): boolean {
    const { from, body } = envelope;
    if (body.type !== "lease" && body.type !== "vote" && body.type !== "ack" && body.type !== "inquiry")
      return false;
    const txnOf = "txnId" in body ? body.txnId : null;
    const target = this.runs.find((r) =>
      txnOf ? r.state.txnId === txnOf : r.state.phase !== "done" && r.state.participants.includes(from),
    );
    if (!target) {
      if (body.type !== "inquiry") return true;
      const logged = this.store.outcomeOf(body.txnId);
      if (logged === null && !presumeAbort) return false;
      const envelopeOut = {
        v: PROTOCOL_VERSION,
        from: this.me,
        to: from,
        sentAtWallMs: this.now().wallMs,
        body: { type: "answer", txnId: body.txnId, answer: logged ?? "aborted" },
      };
      this.publish(inboxTopic(this.corridorId, from, this.me), JSON.stringify(envelopeOut), {});
      return true;
    }
    switch (body.type) {
      case "lease":
        target.step({ type: "lease-reply", from, reply: body.reply });
        break;
      case "vote":
        target.step({
          type: "vote",
          from,
          txnId: body.txnId,
          vote: body.yes ? { yes: true } : { yes: false, reason: body.reason ?? "no reason given" },
        });
        break;
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

/** A plan change to coordinate: the plan file's content, its earliest activation, how far ahead at least. */
export interface PushRequest {
  readonly name: string;
  readonly dailySyncMs: number;
  readonly planFile: PlanFile;
  readonly atWallMs: number | null;
  readonly leadMs: number;
  readonly ackTimeoutMs: number;
  readonly haltAfter?: HaltAfter;
}

/** Coordinates one plan change to its end (or the ack timeout once committed) and says how it went. */
export async function coordinatePush(host: CoordinatorHost, request: PushRequest): Promise<PushResult> {
  const started = host.now();
  const plan = request.planFile;
  const cycleMs = Math.round(plan.cycleSeconds * 1000);
  const earliest = Math.max(request.atWallMs ?? 0, started.wallMs + request.leadMs);
  const activationWallMs = nextCommonBoundary(earliest, request.dailySyncMs, cycleMs);
  const txnId = newTxnId(request.name, started.wallMs);
  const run = host.begin(
    startCoordinator(host.config, {
      txnId,
      coordinator: host.me,
      participants: Object.keys(plan.intersections),
      plan: { planId: plan.id, version: plan.version },
      activationWallMs,
    }),
    plan,
    request.haltAfter,
  );
  // Decided, then acknowledged by all or given up on after the ack timeout (the record is retained).
  let giveUp: NodeJS.Timeout | null = null;
  await new Promise<void>((resolve) => {
    void run.ended.then(resolve);
    const poll = setInterval(() => {
      if (run.state.outcome !== "committed" || giveUp) return;
      clearInterval(poll);
      giveUp = setTimeout(resolve, request.ackTimeoutMs);
    }, 20);
    void run.ended.then(() => clearInterval(poll));
  });
  if (giveUp) clearTimeout(giveUp);
  const state = run.state;
  const outcome = run.halted ? "halted" : (run.finished?.outcome ?? state.outcome ?? "aborted");
  return {
    txnId,
    corridor: host.corridorId,
    plan: { id: plan.id, version: plan.version },
    outcome,
    reason: run.finished?.reason ?? null,
    activationAt: new Date(activationWallMs).toISOString(),
    votes: state.participants.map((id) => {
      const vote = state.votes[id];
      return {
        intersection: id,
        vote: vote ? (vote.yes ? "yes" : "no") : "none",
        reason: vote && !vote.yes ? vote.reason : null,
      };
    }),
    unacknowledged:
      outcome === "committed" ? state.participants.filter((id) => !state.acked.includes(id)) : [],
    durationMs: Math.round(host.now().monoMs - started.monoMs),
  };
}
