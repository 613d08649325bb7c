import {
  type CoordinatorConfig,
  type CoordinatorState,
  startCoordinator,
} from "../../gateway/core/corridor/coordinator.js";
import type { PlanRef } from "../../gateway/core/corridor/participant.js";
import { createHash } from "node:crypto";
import { CoordinatorShell } from "../../gateway/shell/corridor/coordinator-shell.js";
import { newDecisionKeyPair } from "../../gateway/shell/corridor/decision-keys.js";
import type { InvariantChecker } from "./checker.js";
import type { LocalClock } from "./local-clock.js";
import type { Mutation } from "./mutations.js";
import type { RetainedDecision, SimEnvelope } from "./network.js";
import type { SeededRandom } from "./random.js";
import { SimCoordinatorLog } from "./sim-coordinator-log.js";
import { SimulatedCrash } from "./sim-participant-ports.js";

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

export interface PushRequest {
  readonly txnId: string;
  readonly participants: readonly string[];
  /**
   * With the plan's content digest, sent with the PREPARE as `plan push` sends it; a schedule's under
   * its schedule key (`schedule push`); a manual plan's with how long it overrides a schedule.
   */
  readonly plan: PlanRef;
  readonly activationWallMs: number;
  /** What the PREPARE carries: a schedule's bundle (a plan's the simulated gateways look up by id). */
  readonly planFile?: unknown;
}

/**
 * A coordinator in the simulation (an operator's `plan push`, or a gateway acting as one): production's
 * coordinator shell (gateway/shell/corridor/coordinator-shell.ts, as `plan push` and a gateway run it)
 * over a simulated log whose commit records are forced and whose end records are lazy (a crash may
 * lose them), the simulated network and a local clock. The checker's hooks, the crash points and the
 * `skip-forced-commit` mutation live in these ports.
 */
export class SimCoordinator {
  up = true;
  private readonly log = new SimCoordinatorLog();
  /** The production interpreter: a new one at every (re)start, as a new process. */
  private shell: CoordinatorShell;

  constructor(
    readonly id: string,
    readonly clock: LocalClock,
    private readonly ctx: CoordinatorContext,
  ) {
    this.shell = this.start();
  }

  private start(): CoordinatorShell {
    const { ctx, id } = this;
    const crashHere = (point: string) => {
      if (ctx.crashHere(id, point)) throw new SimulatedCrash();
    };
    return new CoordinatorShell({
      me: id,
      config: ctx.config,
      log: {
        persistCommit: (record) => {
          if (ctx.mutation !== "skip-forced-commit") this.log.persistCommit(record);
          ctx.checker.decided(record.txnId, "committed");
          crashHere("after forcing the commit");
        },
        persistEnd: (record) => {
          this.log.persistEnd(record);
          if (record.outcome === "aborted") ctx.checker.decided(record.txnId, "aborted");
        },
        decisionOf: (txnId) => this.log.decisionOf(txnId),
        unfinished: () => this.log.unfinished(),
      },
      network: {
        send: (to, body) => {
          ctx.send({ from: id, to, sentAtWallMs: this.wallNow(), body });
          if (body.type === "decision" && body.outcome === "committed") crashHere(`after COMMIT to ${to}`);
        },
      },
      retain: (record) =>
        ctx.retain({
          txnId: record.txnId,
          publishedBy: id,
          coordinator: id,
          outcome: record.outcome,
          ...(record.signature !== undefined ? { signature: record.signature } : {}),
        }),
      clock: { now: () => this.clock.read(ctx.trueNow()) },
      random01: () => ctx.random.next(),
      // Derived from the transaction, not drawn from the seeded source: a run replays exactly, and
      // signing changes no other random choice of the simulation.
      newDecisionKeys: (txnId) =>
        newDecisionKeyPair(createHash("sha256").update(`simulated decision key ${txnId}`).digest()),
      finished: (txnId, outcome, reason) =>
        ctx.trace(`${id} ${txnId} ${outcome}${reason ? `: ${reason}` : ""}`),
    });
  }

  wallNow(): number {
    return this.clock.read(this.ctx.trueNow()).wallMs;
  }

  /** True while a push of its own is under way (resumed logs do not count). */
  busy(): boolean {
    return this.shell.runs.some((r) => r.state.phase !== "committing");
  }

  active(): readonly CoordinatorState[] {
    return this.shell.runs.map((r) => r.state);
  }

  push(request: PushRequest): void {
    const { planFile, ...txn } = request;
    const state = startCoordinator(this.ctx.config, { ...txn, coordinator: this.id });
    this.ctx.checker.txnStarted(state);
    const until = request.plan.until === undefined ? "" : ` until ${request.plan.until}`;
    this.ctx.trace(
      `${this.id} pushes ${request.txnId}: ${request.plan.planId} v${request.plan.version} to ${state.participants.join(",")} at ${request.activationWallMs}${until}`,
    );
    this.untilCrash(() => this.shell.begin(state, planFile ?? null));
  }

  crash(): void {
    this.up = false;
    this.shell = this.start(); // the process is gone, with its runs; its log is what is left
    this.log.crash(this.ctx.random);
    this.ctx.trace(`${this.id} CRASH`);
  }

  /** A restarted coordinator finishes every committed transaction of its log. */
  restart(): void {
    this.up = true;
    this.ctx.trace(`${this.id} restart`);
    this.untilCrash(() => this.shell.resumeLog());
  }

  tick(): void {
    if (this.up) this.untilCrash(() => this.shell.tick());
  }

  /** Every message is the coordinator's here; what its log does not hold was aborted (presumed abort). */
  receive(envelope: SimEnvelope): void {
    if (this.up) this.untilCrash(() => this.shell.receive(envelope, true));
  }

  /** Runs the shell until a crash point stops this process (a port threw `SimulatedCrash`). */
  private untilCrash(work: () => void): void {
    try {
      work();
    } catch (error) {
      if (!(error instanceof SimulatedCrash)) throw error;
    }
  }
}
