import {
  type ControllerState,
  controllerMode,
  readyToStop,
  startController,
  stepController,
} from "../../gateway/core/controller.js";
import {
  currentLease,
  fencingFloor,
  type LeaseAuthorityEffect,
  type LeaseAuthorityEvent,
  type LeaseAuthorityState,
  startLeaseAuthority,
  stepLeaseAuthority,
} from "../../gateway/core/corridor/lease.js";
import {
  MAX_TOMBSTONES,
  type Outcome,
  type ParticipantEffect,
  type ParticipantEvent,
  type ParticipantState,
  type PreparedTxn,
  startParticipant,
  stepParticipant,
} from "../../gateway/core/corridor/participant.js";
import { checkPrepareTiming, type PrepareTimingRules } from "../../gateway/core/corridor/prepare-check.js";
import { committedToResume } from "../../gateway/core/corridor/resume.js";
import type { Aspect, Intersection, IntersectionPlan, Lamps } from "../../gateway/core/model.js";
import { hasRoomForPlan, MAX_PENDING_PLANS, type Now, stopBoundMs } from "../../gateway/core/sequencer.js";
import { type BucketLimits, takeToken, type TokenBucket } from "../../gateway/core/token-bucket.js";
import type { CorridorBody } from "../../gateway/protocol/corridor-messages.js";
import { gatewayInbound } from "../../gateway/protocol/gateway-inbox.js";
import { DEFAULT_INBOUND_LIMITS } from "../../gateway/shell/inbound-queue.js";
import type { InvariantChecker } from "./checker.js";
import type { LocalClock } from "./local-clock.js";
import type { Mutation } from "./mutations.js";
import type { SimEnvelope } from "./network.js";
import type { SeededRandom } from "./random.js";
import { SimDisk } from "./sim-disk.js";

export interface GatewayContext {
  readonly trueNow: () => number;
  readonly random: SeededRandom;
  readonly send: (envelope: SimEnvelope) => void;
  readonly checker: InvariantChecker;
  readonly trace: (line: string) => void;
  readonly rules: PrepareTimingRules;
  readonly mutation: Mutation | null;
  /** The simulated signal core's verdict on a pushed plan (a push may carry a part that fails it). */
  readonly planRejected: (txnId: string, intersection: string) => string | null;
  /** A coordinator's retained decision record, as this gateway would read it now. */
  readonly retained: (txnId: string, reader: string) => { coordinator: string; outcome: Outcome } | null;
  /** Fault injection at the protocol's critical points: true means "crash right here". */
  readonly crashHere: (party: string, point: string) => boolean;
  /** The longest tick period (with jitter): what a clean stop's bound allows per tick. */
  readonly maxTickMs: number;
  /** A clean stop is done and the process has exited (with `tookMs` on its own clock): restart it later. */
  readonly stopped: (party: string, tookMs: number) => void;
}

/** The I/O module's host watchdog (`watchdogMs` of the example intersections' devices). */
const MODULE_WATCHDOG_MS = 1000;
const SAFE_STATE: Lamps = { red: true, yellow: false, green: false };

/**
 * What the gateway's inbound queue admits from one sender of corridor messages (its inbox topic's last
 * level): the production limits, through the same pure token bucket.
 */
export const CORRIDOR_SENDER_LIMITS: BucketLimits = {
  ratePerSecond: DEFAULT_INBOUND_LIMITS.perSenderPerSecond.corridor,
  burst: DEFAULT_INBOUND_LIMITS.perSenderBurst.corridor,
};

const NO_TXN = {
  coordinator: "",
  token: 0,
  participants: [],
  plan: { planId: "", version: 0 },
  activationWallMs: 0,
};

/**
 * One intersection's gateway in the simulation: the real lease authority, 2PC participant and signal
 * controller, wired the way the gateway's shell wires them (gateway/node/corridor-participant.ts),
 * with a simulated store, a local clock and a perfect field (readback = what was written).
 */
export class SimGateway {
  up = true;
  private authority!: LeaseAuthorityState;
  private participant!: ParticipantState;
  controller!: ControllerState;
  readonly disk = new SimDisk();
  /** What its I/O module shows: the last outputs written, held until the module's watchdog fires. */
  private field: { readonly lamps: readonly Lamps[]; readonly aspects: readonly Aspect[] } | null = null;
  private crashedAtMonoMs: number | null = null;
  /** When (local monotonic) this gateway voted yes on what it is in doubt about (for a mutation). */
  private preparedAtMonoMs: number | null = null;
  /** When (local monotonic) a clean stop was asked for; null unless one is running. */
  private stopAskedAtMonoMs: number | null = null;
  /** The inbound queue's token buckets, per sender: the process's memory (a restart starts them full). */
  private buckets = new Map<string, TokenBucket>();
  /** Messages dropped by the rate limit, over every incarnation. */
  dropped = 0;

  constructor(
    readonly id: string,
    private readonly intersection: Intersection,
    private readonly initialPlan: IntersectionPlan,
    private readonly plans: ReadonlyMap<string, IntersectionPlan>,
    readonly clock: LocalClock,
    private readonly ctx: GatewayContext,
  ) {
    this.boot();
  }

  private now(): Now {
    return this.clock.read(this.ctx.trueNow());
  }

  private planFor(planId: string, version: number): IntersectionPlan | null {
    const plan = this.plans.get(planId);
    return plan && plan.version === version ? plan : null;
  }

  private boot(): void {
    const now = this.now();
    const disk = this.disk.live;
    const started = startLeaseAuthority(disk.epoch);
    this.authority = started.state;
    this.runAuthority(started.effects);
    const rows = this.disk.newestFirst();
    this.participant = startParticipant(
      this.id,
      {
        highestToken: disk.highestToken,
        prepared: this.disk.prepared(),
        // As the store restores them (GatewayStore.participantRecord): outcomes of prepared
        // transactions and refusals (rows with no coordinator) apart, each to its own bound.
        tombstones: rows
          .filter((r) => r.phase !== "prepared" && r.txn.coordinator !== "")
          .slice(0, MAX_TOMBSTONES)
          .reverse()
          .map((r) => ({ txnId: r.txn.txnId, outcome: r.phase as Outcome })),
        refusals: rows
          .filter((r) => r.phase !== "prepared" && r.txn.coordinator === "")
          .slice(0, MAX_TOMBSTONES)
          .reverse()
          .map((r) => r.txn.txnId),
      },
      now.monoMs,
    );
    this.preparedAtMonoMs = this.participant.prepared ? now.monoMs : null;
    this.stopAskedAtMonoMs = null;
    this.buckets = new Map();
    const inForce = disk.planInForce;
    const plan = (inForce && this.planFor(inForce.planId, inForce.version)) ?? this.initialPlan;
    this.controller = startController(this.intersection, plan, null, now);
    this.up = true;
    // A restart before the module's watchdog fired finds the dead process's lamps still lit: the new
    // controller must take them over (the safety oracle keeps watching the same lamps). After it, the
    // module shows its safe state (vehicle red, DON'T WALK): the hardware's transition, a fresh watch.
    const held =
      this.crashedAtMonoMs !== null && now.monoMs - this.crashedAtMonoMs < MODULE_WATCHDOG_MS
        ? this.field
        : null;
    this.ctx.checker.gatewayStarted(
      this.id,
      this.intersection,
      held ? { aspects: held.aspects, monoMs: now.monoMs } : null,
    );
    const field = held?.lamps ?? this.intersection.groups.map(() => SAFE_STATE);
    if (this.crashedAtMonoMs !== null && this.ctx.mutation !== "ignore-field-at-start")
      this.stepController({ type: "field-at-start", observed: field }, now);
    this.ctx.checker.committedOnDisk(
      this.id,
      rows.filter((r) => r.phase === "committed" && r.txn.coordinator !== "").map((r) => r.txn),
      now,
      inForce,
    );
    for (const txn of committedToResume(rows, inForce, now.wallMs, MAX_PENDING_PLANS)) {
      this.ctx.trace(`${this.id} resumes ${txn.txnId} (${txn.plan.planId})`);
      this.schedule(txn);
    }
  }

  crash(): void {
    this.crashedAtMonoMs = this.now().monoMs;
    const lost = this.disk.crash(this.ctx.random);
    this.up = false;
    const stopping = this.stopAskedAtMonoMs !== null ? " while stopping" : "";
    this.stopAskedAtMonoMs = null;
    this.ctx.trace(`${this.id} CRASH${stopping} (${lost} unforced writes lost)`);
    this.ctx.checker.gatewayCrashed(this.id);
  }

  /** A clean stop is running: the controller clears to all-red, the participant votes no. */
  get stopping(): boolean {
    return this.stopAskedAtMonoMs !== null;
  }

  /**
   * A stop signal (SIGTERM, `systemctl stop`), as the production shell handles it
   * (`GatewayNode.stop("clean")`): the controller is told to stop and keeps ticking, with the corridor
   * machines running (a PREPARE gets a no vote), until it is ready to stop; then the lamps go to the
   * module's safe state and the process exits.
   */
  stop(): void {
    if (!this.up || this.stopping) return;
    const now = this.now();
    this.stopAskedAtMonoMs = now.monoMs;
    this.ctx.trace(
      `${this.id} STOP asked (mode ${controllerMode(this.controller)}, bound ${this.stopBound()} ms)`,
    );
    if (this.ctx.mutation === "stop-without-clearances") return this.exitStopped(now);
    this.stepController({ type: "stop" }, now);
  }

  private stopBound(): number {
    return stopBoundMs(this.intersection, this.ctx.maxTickMs);
  }

  /**
   * The end of a clean stop: the shell writes the module's safe state (steady red; the oracle watches
   * that write too), closes the store (every write is durable: the process exits, the machine stays
   * up), and the process exits. The module holds steady red until the gateway starts again.
   */
  private exitStopped(now: Now): void {
    const tookMs = now.monoMs - (this.stopAskedAtMonoMs ?? now.monoMs);
    const lamps = this.intersection.groups.map(() => SAFE_STATE);
    const aspects = this.intersection.groups.map(
      (g) => (g.kind === "vehicle" ? "red" : "dont-walk") as Aspect,
    );
    this.field = { lamps, aspects };
    this.ctx.checker.aspects(this.id, aspects, now.monoMs);
    this.disk.close();
    this.crashedAtMonoMs = now.monoMs;
    this.stopAskedAtMonoMs = null;
    this.up = false;
    this.ctx.trace(`${this.id} stopped cleanly after ${tookMs} ms: module safe state, process exits`);
    this.ctx.stopped(this.id, tookMs);
  }

  restart(): void {
    this.ctx.trace(`${this.id} restart`);
    this.boot();
  }

  leaseHeld(): { holder: string; token: number } | null {
    const lease = currentLease(this.authority, this.now().monoMs);
    return lease ? { holder: lease.holder, token: lease.token } : null;
  }

  inDoubt(): PreparedTxn | null {
    return this.participant.prepared;
  }

  private send(to: string, body: CorridorBody): void {
    this.ctx.send({ from: this.id, to, sentAtWallMs: this.now().wallMs, body });
  }

  /** One gateway tick: the controller (outputs written and read back), then the participant. */
  tick(): void {
    if (!this.up) return;
    const now = this.now();
    this.stepController({ type: "tick" }, now);
    const written = this.controller.written;
    if (written) this.stepController({ type: "readback", observed: written.lamps }, now);
    if (this.stopAskedAtMonoMs !== null) {
      const ready = readyToStop(this.controller);
      this.ctx.checker.stopProgress(
        this.id,
        this.stopAskedAtMonoMs,
        this.stopBound(),
        ready,
        this.controller.written?.aspects ?? [],
        now.monoMs,
      );
      if (ready) return this.exitStopped(now);
    }
    if (
      this.ctx.mutation === "abort-after-yes" &&
      this.participant.prepared &&
      this.preparedAtMonoMs !== null &&
      now.monoMs - this.preparedAtMonoMs > 3000
    ) {
      this.participantStep({
        type: "decision",
        txnId: this.participant.prepared.txnId,
        outcome: "aborted",
        source: "operator",
        by: "mutation",
      });
    }
    this.participantStep({ type: "tick" });
    // A gateway in doubt also reads the coordinator's retained decision record.
    const doubt = this.participant.prepared;
    if (doubt) {
      const record = this.ctx.retained(doubt.txnId, this.id);
      if (record)
        this.participantStep({
          type: "decision",
          txnId: doubt.txnId,
          outcome: record.outcome,
          source: "peer",
          by: record.coordinator,
        });
    }
  }

  private stepController(event: Parameters<typeof stepController>[1], now: Now): void {
    const step = stepController(this.controller, event, now);
    this.controller = step.state;
    for (const effect of step.effects) {
      switch (effect.type) {
        case "write-outputs":
          this.field = { lamps: effect.lamps, aspects: effect.aspects };
          this.ctx.checker.aspects(this.id, effect.aspects, now.monoMs);
          break;
        case "persist-latch":
          this.ctx.checker.faultLatched(this.id, `${effect.latch.kind}: ${effect.latch.message}`);
          break;
        case "clear-latch":
          break;
        case "signal": {
          const e = effect.event;
          if (e.type === "plan-activated")
            this.disk.write(true, (d) => {
              d.planInForce = { planId: e.planId, version: e.version, activationWallMs: e.activationWallMs };
            });
          if (e.type === "plan-activated" || e.type === "plan-superseded" || e.type === "cycle-start")
            this.ctx.trace(
              `${this.id} ${e.type} ${e.planId}${e.type === "plan-activated" ? ` late ${e.lateByMs}` : ""}`,
            );
          this.ctx.checker.signal(this.id, e, now);
          break;
        }
      }
    }
    if (controllerMode(this.controller) === "fault")
      this.ctx.checker.faultLatched(this.id, this.controller.mon.latch?.message ?? "fault");
  }

  private schedule(txn: PreparedTxn): void {
    const plan = this.planFor(txn.plan.planId, txn.plan.version);
    if (!plan) return;
    this.stepController({ type: "schedule-plan", plan, activationWallMs: txn.activationWallMs }, this.now());
  }

  /**
   * The inbound queue's admission (gateway/shell/inbound-queue.ts): one token from the sender's bucket,
   * on this gateway's monotonic clock, or the message is dropped before any work is done on it.
   */
  admit(from: string): boolean {
    const { bucket, admitted } = takeToken(this.buckets.get(from), this.now().monoMs, CORRIDOR_SENDER_LIMITS);
    this.buckets.set(from, bucket);
    if (!admitted) this.dropped++;
    return admitted;
  }

  /**
   * `count` messages from one sender arriving at this instant: how many the bucket admits (the first
   * ones). Past the first refusal the rest are refused too (no time passes for the bucket to refill),
   * so they are counted without a token each.
   */
  admitMany(from: string, count: number): number {
    let admitted = 0;
    while (admitted < count && this.admit(from)) admitted++;
    if (admitted < count) this.dropped += count - admitted - 1;
    return admitted;
  }

  receive(envelope: SimEnvelope): void {
    if (!this.up) return;
    if (!this.admit(envelope.from))
      return this.ctx.trace(`${this.id} drops (rate limit) ${envelope.body.type}`);
    this.handle(envelope);
  }

  /** The work on an admitted message. */
  handle(envelope: SimEnvelope): void {
    if (!this.up) return;
    const inbound = gatewayInbound(envelope, this.participant.prepared?.coordinator ?? null);
    switch (inbound.kind) {
      case "authority":
        return this.authorityStep(inbound.event);
      case "prepare": {
        const { txn } = inbound;
        const now = this.now();
        const timing = checkPrepareTiming(this.ctx.rules, {
          ownClockErrorMs: null,
          sentAtWallMs: envelope.sentAtWallMs,
          nowWallMs: now.wallMs,
          activationWallMs: txn.activationWallMs,
        });
        const rejected = this.ctx.planRejected(txn.txnId, this.id);
        // While stopping, the production shell's planRefusal says no (gateway-node.ts).
        const verdict = !timing.ok
          ? timing
          : this.stopping
            ? { ok: false as const, reason: "the gateway is stopping" }
            : !hasRoomForPlan(this.controller.seq, txn.activationWallMs)
              ? { ok: false as const, reason: `${MAX_PENDING_PLANS} plan changes already wait` }
              : rejected !== null || !this.planFor(txn.plan.planId, txn.plan.version)
                ? {
                    ok: false as const,
                    reason: rejected ?? `no plan ${txn.plan.planId} v${txn.plan.version}`,
                  }
                : { ok: true as const };
        const fenced = this.ctx.mutation === "ignore-fencing-token";
        return this.participantStep(
          { type: "prepare", txn, verdict, lastIssuedToken: fenced ? 0 : fencingFloor(this.authority) },
          fenced,
        );
      }
      case "participant":
        return this.participantStep(inbound.event);
      case "none":
        return;
    }
  }

  private authorityStep(event: LeaseAuthorityEvent): void {
    const step = stepLeaseAuthority(this.authority, event, this.now().monoMs);
    this.authority = step.state;
    this.runAuthority(step.effects);
  }

  private runAuthority(effects: readonly LeaseAuthorityEffect[]): void {
    for (const effect of effects) {
      if (effect.type === "persist-epoch") {
        this.disk.write(true, (d) => {
          d.epoch = effect.epoch;
        });
        this.ctx.checker.epochStarted(this.id, effect.epoch);
        this.authority = stepLeaseAuthority(
          this.authority,
          { type: "epoch-durable" },
          this.now().monoMs,
        ).state;
      } else {
        this.send(effect.to, { type: "lease", reply: effect.reply });
        if (effect.reply.type !== "granted") continue;
        this.ctx.checker.tokenIssued(this.id, effect.reply.token, effect.reply.requestId);
        // The lease lives only in the authority's memory: a restart voids it under its holder.
        if (this.up && this.ctx.crashHere(this.id, "after granting a lease")) return;
      }
    }
  }

  /** `unfenced`: the fencing-token mutation, which lets the machine see no floor at all. */
  private participantStep(event: ParticipantEvent, unfenced = false): void {
    const before = this.participant;
    const step = stepParticipant(
      unfenced ? { ...before, highestToken: 0 } : before,
      event,
      this.now().monoMs,
    );
    this.participant = unfenced
      ? { ...step.state, highestToken: Math.max(step.state.highestToken, before.highestToken) }
      : step.state;
    for (const effect of step.effects) {
      this.run(effect);
      if (!this.up) return;
      const critical =
        effect.type === "persist-prepared" || (effect.type === "persist-outcome" && effect.forced);
      if (critical && this.ctx.crashHere(this.id, `after ${effect.type}`)) return;
    }
  }

  private run(effect: ParticipantEffect): void {
    switch (effect.type) {
      case "persist-prepared": {
        this.preparedAtMonoMs = this.now().monoMs;
        this.ctx.checker.prepared(this.id, effect.txn);
        if (this.ctx.mutation === "skip-forced-prepare") return;
        const order = this.disk.nextOrder();
        this.disk.write(true, (d) => {
          d.txns.set(effect.txn.txnId, { txn: effect.txn, phase: "prepared", order });
          d.highestToken = effect.highestToken;
        });
        return;
      }
      case "persist-outcome": {
        const order = this.disk.nextOrder();
        this.disk.write(effect.forced, (d) => {
          const row = d.txns.get(effect.txnId);
          const txn = row?.txn ?? { txnId: effect.txnId, ...NO_TXN };
          d.txns.set(effect.txnId, { txn, phase: effect.outcome, order });
        });
        if (effect.outcome === "aborted") this.ctx.checker.aborted(this.id, effect.txnId);
        return;
      }
      case "vote":
        return this.send(effect.to, {
          type: "vote",
          txnId: effect.txnId,
          yes: effect.yes,
          reason: effect.reason,
        });
      case "ack":
        return this.send(effect.to, { type: "ack", txnId: effect.txnId, outcome: effect.outcome });
      case "apply-plan":
        this.ctx.checker.applied(this.id, effect.txn, this.now(), this.disk.live.planInForce);
        this.ctx.trace(
          `${this.id} applies ${effect.txn.txnId} (${effect.txn.plan.planId} at ${effect.txn.activationWallMs})`,
        );
        this.schedule(effect.txn);
        return;
      case "ask-decision":
        this.send(effect.txn.coordinator, { type: "inquiry", txnId: effect.txn.txnId });
        for (const peer of effect.txn.participants)
          if (peer !== this.id) this.send(peer, { type: "inquiry", txnId: effect.txn.txnId });
        return;
      case "answer-inquiry":
        return this.send(effect.to, { type: "answer", txnId: effect.txnId, answer: effect.answer });
      case "report":
        this.ctx.trace(`${this.id} report: ${effect.message}`);
        return;
    }
  }
}
