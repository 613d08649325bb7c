import { ConfigError } from "../../gateway/config/errors.js";
import type { IntersectionSetup } from "../../gateway/config/load.js";
import { compileScheduleBundle } from "../../gateway/config/schedule-bundle.js";
import {
  type ControllerEvent,
  type ControllerState,
  controllerMode,
  readyToStop,
} from "../../gateway/core/controller.js";
import type { PreparedTxn } from "../../gateway/core/corridor/participant.js";
import type { PrepareTimingRules } from "../../gateway/core/corridor/prepare-check.js";
import type { Aspect, Intersection, IntersectionPlan, Lamps } from "../../gateway/core/model.js";
import { isCompiledSchedule } from "../../gateway/core/schedule/committed-change.js";
import { scheduledPlanAt } from "../../gateway/core/schedule/schedule-runner.js";
import { planChangeRefusal, stopBoundMs } from "../../gateway/core/sequencer.js";
import type { Now } from "../../gateway/core/time.js";
import { type BucketLimits, takeToken, type TokenBucket } from "../../gateway/core/token-bucket.js";
import type { ParticipantShellHost, PlanCheck } from "../../gateway/shell/corridor/participant-ports.js";
import { ParticipantShell } from "../../gateway/shell/corridor/participant-shell.js";
import { type ControllerHooks, ControllerShell } from "../../gateway/shell/controller-shell.js";
import { DetectorTraffic } from "./detector-traffic.js";
import { MemoryLatchStore } from "../../gateway/shell/latch-store.js";
import { DEFAULT_INBOUND_LIMITS } from "../../gateway/shell/inbound-queue.js";
import type { ScheduleShell } from "../../gateway/shell/schedule-shell.js";
import type { InvariantChecker } from "./checker.js";
import type { LocalClock } from "./local-clock.js";
import type { Mutation } from "./mutations.js";
import type { RetainedDecision, SimEnvelope } from "./network.js";
import type { SeededRandom } from "./random.js";
import { SimDisk } from "./sim-disk.js";
import { SimulatedCrash, simParticipantPorts } from "./sim-participant-ports.js";
import { recordSimSchedulePlans, restoreSimSchedule, simScheduleShell } from "./sim-schedule-shell.js";

export interface GatewayContext {
  /** The run's seed: what the gateway's own random streams (its detector traffic) start from. */
  readonly seed: number;
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
  readonly retained: (txnId: string, reader: string) => readonly RetainedDecision[];
  /** Fault injection at the protocol's critical points: true means "crash right here". */
  readonly crashHere: (party: string, point: string) => boolean;
  /** The longest tick period (with jitter): what a clean stop's bound allows per tick. */
  readonly maxTickMs: number;
  /** A clean stop is done and the process has exited (with `tookMs` on its own clock): restart it later. */
  readonly stopped: (party: string, tookMs: number) => void;
}

/**
 * A gateway's detector traffic stream: from the run's seed and the gateway's id, not drawn from the
 * world's stream, so that adding detectors changed no other fault or push of a seed's run.
 */
function trafficSeed(seed: number, id: string): number {
  let h = seed | 0;
  for (const ch of id) h = (Math.imul(h, 31) + ch.charCodeAt(0)) | 0;
  return h;
}

/** The I/O module's host watchdog (`watchdogMs` of the example intersections' devices). */
const MODULE_WATCHDOG_MS = 1000;
const SAFE_STATE: Lamps = { red: true, yellow: false, green: false };

/**
 * The schedule shell ticks every this many gateway ticks (about every 500 ms, as the gateway's own
 * timer: gateway/node/schedule-feature.ts).
 */
export const SCHEDULE_TICK_EVERY = 5;

/**
 * What the gateway's inbound queue admits from one sender of corridor messages (its inbox topic's last
 * level): the production limits, through the same pure token bucket.
 */
export const CORRIDOR_SENDER_LIMITS: BucketLimits = {
  ratePerSecond: DEFAULT_INBOUND_LIMITS.perSenderPerSecond.corridor,
  burst: DEFAULT_INBOUND_LIMITS.perSenderBurst.corridor,
};

/** What one intersection's gateway is configured with. */
export interface SimGatewaySetup {
  readonly intersection: Intersection;
  readonly initialPlan: IntersectionPlan;
  /** The corridor's plans compiled for this intersection, by plan id. */
  readonly plans: ReadonlyMap<string, IntersectionPlan>;
  /** Its configuration as the gateway loads it: a PREPARE's schedule is compiled against it. */
  readonly setup: IntersectionSetup;
}

/**
 * One intersection's gateway in the simulation: production's participant shell
 * (gateway/shell/corridor/participant-shell.ts, the lease authority and 2PC participant as the gateway
 * runs them) over simulated ports (sim-participant-ports.ts), production's schedule shell
 * (gateway/shell/schedule-shell.ts) over sim-schedule-shell.ts, and the real signal controller, with a
 * simulated store, a local clock and a perfect field (readback = what was written).
 */
export class SimGateway {
  up = true;
  /** The production interpreter of the corridor machines: a new one at every (re)start, as a new process. */
  private shell!: ParticipantShell;
  /** The controller, run by production's own interpreter of its effects (gateway/shell/controller-shell.ts). */
  private signal!: ControllerShell;
  /** The schedule runner, by production's interpreter: a new one at every (re)start, from the disk. */
  private schedule!: ScheduleShell;
  /** The time of the controller step in progress: its hooks report what happened at it. */
  private stepNow: Now = { monoMs: 0, wallMs: 0 };

  get controller(): ControllerState {
    return this.signal.controller;
  }
  readonly disk = new SimDisk();
  /** What its I/O module shows: the last outputs written, held until the module's watchdog fires. */
  private field: { readonly lamps: readonly Lamps[]; readonly aspects: readonly Aspect[] } | null = null;
  private crashedAtMonoMs: number | null = null;
  /** How the last run ended, and the plan it ran: what production's store records (PreviousRun). */
  private lastRun: { readonly ended: "stopped-clean" | "ended-abruptly"; readonly plan: string } | null =
    null;
  /** When (local monotonic) this gateway voted yes on what it is in doubt about (for a mutation). */
  private preparedAtMonoMs: number | null = null;
  /** When (local monotonic) a clean stop was asked for; null unless one is running. */
  private stopAskedAtMonoMs: number | null = null;
  /** Ticks of this process (the schedule shell runs every few). */
  private ticks = 0;
  /** The inbound queue's token buckets, per sender: the process's memory (a restart starts them full). */
  private buckets = new Map<string, TokenBucket>();
  /** Messages dropped by the rate limit, over every incarnation. */
  dropped = 0;

  private readonly intersection: Intersection;
  /** Its detectors' traffic (from the world's seed): readings each tick, as its modules would give them. */
  private readonly traffic: DetectorTraffic | null;

  constructor(
    readonly id: string,
    private readonly config: SimGatewaySetup,
    readonly clock: LocalClock,
    private readonly ctx: GatewayContext,
  ) {
    this.intersection = config.intersection;
    this.traffic =
      (config.intersection.detectors?.length ?? 0) > 0
        ? new DetectorTraffic(config.intersection, trafficSeed(ctx.seed, id))
        : null;
    this.boot();
  }

  private now(): Now {
    return this.clock.read(this.ctx.trueNow());
  }

  private planFor(planId: string, version: number): IntersectionPlan | null {
    const plan = this.config.plans.get(planId);
    return plan && plan.version === version ? plan : null;
  }

  private boot(): void {
    const now = this.now();
    this.shell = new ParticipantShell(
      simParticipantPorts({
        id: this.id,
        disk: this.disk,
        checker: this.ctx.checker,
        mutation: this.ctx.mutation,
        rules: this.ctx.rules,
        now: () => this.now(),
        send: (to, body) => this.ctx.send({ from: this.id, to, sentAtWallMs: this.now().wallMs, body }),
        crashHere: (point) => this.up && this.ctx.crashHere(this.id, point),
        prepared: (atMonoMs) => {
          this.preparedAtMonoMs = atMonoMs;
        },
        planCheck: this.planCheck(),
        host: this.participantHost(),
        trace: (line) => this.ctx.trace(line),
      }),
    );
    this.preparedAtMonoMs = this.shell.inDoubt ? now.monoMs : null;
    this.stopAskedAtMonoMs = null;
    this.buckets = new Map();
    this.ticks = 0;
    const inForce = this.disk.planInForce();
    const restoredSchedule = restoreSimSchedule(this.disk, (line) => this.ctx.trace(`${this.id} ${line}`));
    // As production's `startPlan` (plan-at-start.ts): the plan the schedule has in force now, if one
    // governs without an override; otherwise the plan in force, or the configured one.
    const scheduled = scheduledPlanAt(restoredSchedule, now.wallMs);
    const plan =
      (scheduled?.intersectionId === this.id ? scheduled : null) ??
      (inForce && this.planFor(inForce.planId, inForce.version)) ??
      this.config.initialPlan;
    // The simulated module's field holds no latch of its own: a latched fault fails the run (checker).
    this.signal = new ControllerShell(
      this.intersection,
      plan,
      new MemoryLatchStore(),
      this.controllerHooks(),
      now,
    );
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
      now.wallMs,
    );
    const field = held?.lamps ?? this.intersection.groups.map(() => SAFE_STATE);
    const previous =
      this.lastRun && this.lastRun.plan === `${plan.planId}@${plan.version}` ? this.lastRun.ended : "unknown";
    if (this.crashedAtMonoMs !== null && this.ctx.mutation !== "ignore-field-at-start")
      this.stepController({ type: "field-at-start", observed: field, previous }, now);
    const committed = this.disk
      .newestFirst()
      .filter((r) => r.phase === "committed" && r.txn.coordinator !== "");
    this.ctx.checker.committedOnDisk(
      this.id,
      committed.map((r) => r.txn),
      now,
      inForce,
    );
    this.schedule = simScheduleShell(
      {
        id: this.id,
        disk: this.disk,
        mutation: this.ctx.mutation,
        now: () => this.now(),
        runningPlan: () => this.controller.seq.plan,
        pendingChanges: () => {
          const { pending, next } = this.controller.seq;
          return next?.activation ? [...pending, next.activation] : pending;
        },
        dispatch: (event) => this.stepController(event, this.now()),
        trace: (line) => this.ctx.trace(line),
      },
      restoredSchedule,
    );
    this.shell.resume();
  }

  /**
   * The plan-check port: the simulated signal core's verdict, and the corridor's plan for this
   * intersection; a schedule bundle compiled as a gateway compiles it (compiled-plan-check.ts).
   */
  private planCheck(): PlanCheck {
    return {
      check: (body) => {
        const rejected = this.ctx.planRejected(body.txnId, this.id);
        if (rejected !== null) return { ok: false, reason: rejected };
        if (body.plan.kind === "schedule") return this.scheduleCheck(body);
        const plan = this.planFor(body.plan.id, body.plan.version);
        if (!plan) return { ok: false, reason: `no plan ${body.plan.id} v${body.plan.version}` };
        return { ok: true, plan };
      },
    };
  }

  private scheduleCheck(body: Parameters<PlanCheck["check"]>[0]): ReturnType<PlanCheck["check"]> {
    const label = `PREPARE ${body.txnId}: schedule ${body.plan.id}`;
    try {
      const claimed = { id: body.plan.id, version: body.plan.version };
      return { ok: true, plan: compileScheduleBundle(label, body.planFile, this.config.setup, claimed) };
    } catch (error) {
      if (error instanceof ConfigError) return { ok: false, reason: error.message };
      throw error;
    }
  }

  /**
   * What the gateway node does for its participant (gateway-node.ts, corridor-feature.ts), as the
   * simulator models it: a committed schedule is recorded and adopted by the schedule shell; a plan
   * overrides the schedule (its own waiting change withdrawn first) and goes to the controller.
   */
  private participantHost(): ParticipantShellHost {
    return {
      schedulePlan: (change, txn, resumed) => {
        if (resumed) this.ctx.trace(`${this.id} resumes ${txn.txnId} (${txn.plan.planId})`);
        else {
          this.ctx.checker.applied(this.id, txn, this.now(), this.disk.planInForce());
          this.ctx.trace(`${this.id} applies ${txn.txnId} (${txn.plan.planId} at ${txn.activationWallMs})`);
        }
        if (isCompiledSchedule(change)) {
          recordSimSchedulePlans(this.disk, change, txn.txnId);
          this.schedule.adopt(change, txn);
          return;
        }
        this.schedule.manual(change, txn);
        this.stepController(
          { type: "schedule-plan", plan: change, activationWallMs: txn.activationWallMs, txnId: txn.txnId },
          this.now(),
        );
      },
      // The production node's rule (corridor-feature.ts): no while stopping, or with the queue full.
      planRefusal: (activationWallMs) =>
        planChangeRefusal(this.controller.seq, activationWallMs, this.stopping),
      // The production node's (corridor-feature.ts): the schedule's override, then the controller.
      withdrawPlan: (txnId, final) => {
        if (final) this.ctx.checker.cancelTaken(this.id, txnId, this.now());
        this.ctx.trace(`${this.id} ${final ? "cancels" : "holds back"} ${txnId}`);
        if (final) this.schedule.cancelManual(txnId);
        this.stepController({ type: "withdraw-plan", txnId }, this.now());
      },
      audit: () => {},
      changed: () => {},
    };
  }

  /** Runs the shell until a simulated crash point stops this process (the port threw `SimulatedCrash`). */
  private untilCrash(work: () => void): void {
    try {
      work();
    } catch (error) {
      if (!(error instanceof SimulatedCrash)) throw error;
    }
  }

  crash(): void {
    this.crashedAtMonoMs = this.now().monoMs;
    this.lastRun = this.ranBy("ended-abruptly");
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
    this.lastRun = this.ranBy("stopped-clean");
    this.stopAskedAtMonoMs = null;
    this.up = false;
    this.ctx.trace(`${this.id} stopped cleanly after ${tookMs} ms: module safe state, process exits`);
    this.ctx.stopped(this.id, tookMs);
  }

  private ranBy(ended: "stopped-clean" | "ended-abruptly") {
    const plan = this.signal?.controller.seq.plan;
    return plan ? { ended, plan: `${plan.planId}@${plan.version}` } : null;
  }

  restart(): void {
    this.ctx.trace(`${this.id} restart`);
    this.boot();
  }

  leaseHeld(): { holder: string; token: number } | null {
    return this.shell.lock;
  }

  inDoubt(): PreparedTxn | null {
    return this.shell.inDoubt;
  }

  /** One gateway tick: the controller (outputs written and read back), then the participant. */
  tick(): void {
    if (!this.up) return;
    const now = this.now();
    this.stepController({ type: "tick" }, now);
    const written = this.controller.written;
    if (written) this.stepController({ type: "readback", observed: written.lamps }, now);
    if (this.traffic) this.stepController({ type: "detectors", readings: this.traffic.next() }, now);
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
    this.untilCrash(() => this.participantTick(now));
    // The schedule's timer runs beside the participant's (production: every 500 ms), also while stopping.
    if (this.up && ++this.ticks % SCHEDULE_TICK_EVERY === 0) this.schedule.tick();
  }

  /** The participant's share of a tick: its timers, and the retained decision record when in doubt. */
  private participantTick(now: Now): void {
    const inDoubt = this.shell.inDoubt;
    if (
      this.ctx.mutation === "abort-after-yes" &&
      inDoubt &&
      this.preparedAtMonoMs !== null &&
      now.monoMs - this.preparedAtMonoMs > 3000
    )
      this.shell.resolve(inDoubt.txnId, "aborted", "mutation");
    this.shell.tick();
    // A gateway in doubt also reads the retained decision records (the coordinator's, and any copies).
    const doubt = this.shell.inDoubt;
    if (!doubt) return;
    for (const record of this.ctx.retained(doubt.txnId, this.id)) {
      if (this.shell.inDoubt?.txnId !== doubt.txnId) return;
      this.shell.onDecisionRecord(record, record.publishedBy);
    }
  }

  private stepController(event: ControllerEvent, now: Now): void {
    this.stepNow = now;
    this.signal.dispatch(event, now);
    if (controllerMode(this.controller) === "fault")
      this.ctx.checker.faultLatched(this.id, this.controller.mon.latch?.message ?? "fault");
  }

  /** What the controller's effects do here: the field shows the outputs, the checker sees everything. */
  private controllerHooks(): ControllerHooks {
    return {
      writeOutputs: (aspects, lamps) => {
        this.field = { lamps, aspects };
        this.ctx.checker.aspects(this.id, aspects, this.stepNow.monoMs);
      },
      onFault: (latch) => this.ctx.checker.faultLatched(this.id, `${latch.kind}: ${latch.message}`),
      onSignal: (e) => {
        if (e.type === "plan-activated")
          this.disk.write(true, (d) => {
            d.planInForce = { planId: e.planId, version: e.version, activationWallMs: e.activationWallMs };
          });
        if (e.type === "plan-activated")
          this.ctx.trace(`${this.id} ${e.type} ${e.planId} (${e.txnId}) late ${e.lateByMs}`);
        else if (e.type === "plan-superseded") this.ctx.trace(`${this.id} ${e.type} ${e.planId} by ${e.by}`);
        else if (e.type === "plan-withdrawn") this.ctx.trace(`${this.id} ${e.type} ${e.planId} (${e.txnId})`);
        else if (e.type === "plan-scheduled")
          this.ctx.trace(`${this.id} ${e.type} ${e.planId} at ${e.activationWallMs}`);
        else if (e.type === "cycle-start")
          this.ctx.trace(`${this.id} ${e.type} ${e.planId} offset error ${e.offsetErrorMs}`);
        else if (e.type === "mode") this.ctx.trace(`${this.id} mode ${e.mode} (was ${e.previous})`);
        this.ctx.checker.signal(this.id, e, this.stepNow);
      },
    };
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
    this.untilCrash(() => this.shell.onMessage(envelope));
  }
}
