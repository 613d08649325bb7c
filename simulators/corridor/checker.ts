import { cancelTarget } from "../../gateway/core/corridor/plan-cancel.js";
import type { CoordinatorState } from "../../gateway/core/corridor/coordinator.js";
import { TOKENS_PER_EPOCH } from "../../gateway/core/corridor/lease.js";
import type { Outcome, PreparedTxn } from "../../gateway/core/corridor/participant.js";
import { type Aspect, IN_STEP_TOLERANCE_MS, type Intersection } from "../../gateway/core/model.js";
import { isScheduleKey } from "../../gateway/core/schedule/committed-change.js";
import type { SignalEvent } from "../../gateway/core/sequencer.js";
import type { Now } from "../../gateway/core/time.js";
import { SafetyOracle } from "../signal-oracle.js";
import { type PushedSchedule, ScheduleAgreement } from "./schedule-agreement.js";

/** The committed change a gateway runs (its plan in force and that change's instant). */
export interface RunningChange {
  readonly planId: string;
  readonly version: number;
  readonly activationWallMs: number | null;
}

/** What the checker reads of the corridor once the faults have stopped. */
export interface CorridorView {
  readonly coordinatorsBusy: readonly string[];
  readonly gateways: readonly {
    readonly id: string;
    readonly inDoubt: string | null;
    readonly lease: string | null;
    readonly plan: { planId: string; version: number };
    /** Its controller's reported mode (`flash` for a scheduled flash). */
    readonly mode: string;
    /** Its own wall clock. */
    readonly wallMs: number;
  }[];
}

export type InvariantName =
  | "safety"
  | "clean-stop"
  | "atomicity"
  | "agreement-in-time"
  | "exclusion"
  | "durability"
  | "liveness"
  /** Intersections governed by one committed schedule run what it has in force, from the same boundary. */
  | "schedule-agreement"
  /** A check of the product's own machines (`invariant()` in gateway/core) failed. */
  | "product-invariant";

/** An invariant broken: the run stops here, with its seed and trace. */
export class SimulationViolation extends Error {
  constructor(
    readonly invariant: InvariantName,
    message: string,
  ) {
    super(`${invariant}: ${message}`);
    this.name = "SimulationViolation";
  }
}

interface TxnFacts {
  readonly txnId: string;
  readonly coordinator: string;
  readonly participants: readonly string[];
  readonly plan: { readonly planId: string; readonly version: number };
  readonly activationWallMs: number;
  decision: Outcome | null;
  /** Order in which decisions were made (for "which committed change is the newest"). */
  decidedSeq: number;
  /** Per participant: when it learned the commit (its own wall clock), and whether it entered the plan. */
  readonly applied: Map<string, { learnedAtWallMs: number; seq: number; entered: boolean }>;
  readonly abortedAt: Set<string>;
  /** Participants that entered its plan at a cycle boundary (a plan-activated event named it). */
  readonly enteredAt: Set<string>;
  /** A change: participants holding it back while in doubt about a cancel of it (plan-cancel.ts). */
  readonly heldAt: Set<string>;
  /** A change: participants where a committed cancel took it back. */
  readonly cancelledAt: Set<string>;
}

/**
 * The simulation's omniscient observer: it sees every machine's effects and checks the corridor's
 * invariants at every step (safety, atomicity, agreement in time, exclusion), and durability and
 * liveness once the faults have stopped.
 */
export class InvariantChecker {
  private readonly oracles = new Map<string, SafetyOracle>();
  /** Per intersection: the highest fencing token it issued or accepted, across crashes. */
  private readonly tokenFloor = new Map<string, number>();
  private readonly lastGrant = new Map<string, string>();
  readonly txns = new Map<string, TxnFacts>();
  /** The committed cancels, by the transaction each takes back (`cancelOf`). */
  private readonly committedCancels = new Map<string, TxnFacts>();
  private seq = 0;
  /** Largest lateness at which a cycle boundary may still fall after the instant it was planned for. */
  private readonly boundarySlackMs: number;
  readonly schedules: ScheduleAgreement;

  constructor(maxTickMs: number, maxStages: number, scheduleTickMs: number) {
    this.boundarySlackMs = 3 * maxStages * maxTickMs;
    this.schedules = new ScheduleAgreement(scheduleTickMs, this.boundarySlackMs, (message) =>
      this.fail("schedule-agreement", message),
    );
  }

  /** A coordinator pushes a schedule (the checker keeps its own copy of what was pushed). */
  schedulePushed(txnId: string, pushed: PushedSchedule): void {
    this.schedules.schedulePushed(txnId, pushed);
  }

  private fail(invariant: InvariantName, message: string): never {
    throw new SimulationViolation(invariant, message);
  }

  // --- signal safety ---

  /**
   * `held`: it restarted before its module's watchdog fired, over the lamps the dead process left. The
   * watch goes on from them: a green must still end in a full yellow, a WALK in its clearance. A
   * pedestrian clearance was frozen by the module (its flashing stopped): it counts as DON'T WALK.
   */
  gatewayStarted(
    id: string,
    intersection: Intersection,
    held: { readonly aspects: readonly Aspect[]; readonly monoMs: number } | null,
    nowWallMs: number,
  ): void {
    this.schedules.gatewayStarted(id, nowWallMs);
    const oracle = new SafetyOracle(intersection);
    if (held) {
      const frozen = held.aspects.map((a) => (a === "ped-clearance" ? "dont-walk" : a));
      const broken = oracle.observe(frozen, held.monoMs);
      if (broken) this.fail("safety", `${id}: ${broken}`);
    }
    this.oracles.set(id, oracle);
  }

  gatewayCrashed(_id: string): void {
    // The module holds the lamps until its watchdog fires; the restart decides which it found.
  }

  aspects(id: string, aspects: readonly Aspect[], localMonoMs: number): void {
    const broken = this.oracles.get(id)?.observe(aspects, localMonoMs);
    if (broken) this.fail("safety", `${id}: ${broken}`);
  }

  /**
   * A clean stop asked at `askedAtMonoMs` (the gateway's monotonic clock) must reach all-red — every
   * vehicle head red, every pedestrian head DON'T WALK — within `boundMs` (`stopBoundMs`). Called at
   * every tick while it runs; `ready`: the controller says the lamps may now go to the module's safe
   * state, showing `shown`. (That the clearances were not cut on the way is the oracle's watch.)
   */
  stopProgress(
    id: string,
    askedAtMonoMs: number,
    boundMs: number,
    ready: boolean,
    shown: readonly Aspect[],
    nowMonoMs: number,
  ): void {
    const tookMs = nowMonoMs - askedAtMonoMs;
    if (ready) {
      const lit = shown.findIndex((a) => a !== "red" && a !== "dont-walk");
      if (lit >= 0)
        this.fail(
          "clean-stop",
          `${id} was ready to stop ${tookMs} ms after the stop while group #${lit + 1} still showed ${shown[lit]}`,
        );
    }
    if (tookMs > boundMs)
      this.fail(
        "clean-stop",
        `${id}: a clean stop asked ${tookMs} ms ago ${ready ? "reached all-red only now" : "has not reached all-red"} (bound ${boundMs} ms)`,
      );
  }

  faultLatched(id: string, why: string): void {
    this.fail("safety", `${id}: the conflict monitor latched a fault (${why})`);
  }

  // --- the corridor protocol ---

  txnStarted(s: CoordinatorState): void {
    this.txns.set(s.txnId, {
      txnId: s.txnId,
      coordinator: s.coordinator,
      participants: s.participants,
      plan: s.plan,
      activationWallMs: s.activationWallMs,
      decision: null,
      decidedSeq: 0,
      applied: new Map(),
      abortedAt: new Set(),
      enteredAt: new Set(),
      heldAt: new Set(),
      cancelledAt: new Set(),
    });
  }

  /** The transaction a cancel's facts take back (null: not a cancel). */
  private targetOf(facts: TxnFacts): TxnFacts | null {
    const target = cancelTarget(facts.plan.planId);
    return target === null ? null : (this.txns.get(target) ?? null);
  }

  /** A committed cancel of this change, if any. */
  private cancelOf(facts: TxnFacts): TxnFacts | null {
    return this.committedCancels.get(facts.txnId) ?? null;
  }

  private facts(txnId: string): TxnFacts {
    const facts = this.txns.get(txnId);
    if (!facts) this.fail("atomicity", `transaction ${txnId} was never started by a coordinator`);
    return facts;
  }

  /** A (re)started authority's epoch is durable: every token of its earlier incarnations is void. */
  epochStarted(id: string, epoch: number): void {
    this.tokenFloor.set(id, Math.max(this.tokenFloor.get(id) ?? 0, epoch * TOKENS_PER_EPOCH));
  }

  tokenIssued(id: string, token: number, requestId: string): void {
    const floor = this.tokenFloor.get(id) ?? 0;
    // The same grant again (a duplicated request) is not a new token.
    const again = token === floor && this.lastGrant.get(id) === requestId;
    if (token <= floor && !again)
      this.fail("exclusion", `${id} issued fencing token ${token} to ${requestId}, not above ${floor}`);
    this.tokenFloor.set(id, token);
    this.lastGrant.set(id, requestId);
  }

  prepared(id: string, txn: PreparedTxn): void {
    const floor = this.tokenFloor.get(id) ?? 0;
    if (txn.token < floor)
      this.fail(
        "exclusion",
        `${id} accepted PREPARE ${txn.txnId} with fencing token ${txn.token}, older than ${floor}, which it already issued or accepted (or its authority's epoch floor after a restart)`,
      );
    this.tokenFloor.set(id, txn.token);
    // In doubt about a cancel, the gateway holds the change back (participant-shell.ts).
    const target = this.targetOf(this.facts(txn.txnId));
    target?.heldAt.add(id);
  }

  decided(txnId: string, outcome: Outcome): void {
    const facts = this.facts(txnId);
    if (facts.decision !== null && facts.decision !== outcome)
      this.fail("atomicity", `${txnId} decided ${facts.decision}, then ${outcome}`);
    if (facts.decision !== null) return;
    facts.decision = outcome;
    facts.decidedSeq = ++this.seq;
    if (outcome !== "committed") return;
    const target = cancelTarget(facts.plan.planId);
    if (target !== null && !this.committedCancels.has(target)) this.committedCancels.set(target, facts);
    for (const id of facts.participants) {
      if (facts.abortedAt.has(id)) this.fail("atomicity", `${txnId} committed, but ${id} had aborted it`);
      for (const other of this.txns.values()) {
        if (other === facts || other.decision !== "committed" || !other.participants.includes(id)) continue;
        if (!other.applied.has(id))
          this.fail(
            "exclusion",
            `${id}: ${other.coordinator}'s ${other.txnId} and ${facts.coordinator}'s ${txnId} are both committed while ${id} has not yet taken the first`,
          );
      }
    }
  }

  aborted(id: string, txnId: string, nowWallMs = 0): void {
    const facts = this.txns.get(txnId);
    if (!facts) return;
    facts.abortedAt.add(id);
    // A cancel that aborts hands the change it held back over again: learned again, now.
    const target = this.targetOf(facts);
    if (target?.heldAt.delete(id)) {
      const applied = target.applied.get(id);
      if (applied) applied.learnedAtWallMs = nowWallMs;
    }
    if (facts.decision === "committed" && facts.participants.includes(id))
      this.fail("atomicity", `${id} aborted ${txnId}, which ${facts.coordinator} committed`);
  }

  /** `running`: the change this gateway runs now; one for the same plan and instant needs no entry. */
  applied(id: string, txn: PreparedTxn, now: Now, running: RunningChange | null): void {
    const facts = this.facts(txn.txnId);
    const target = this.targetOf(facts);
    if (target !== null) return this.cancelApplied(id, facts, target, now);
    if (facts.decision !== "committed")
      this.fail(
        "atomicity",
        `${id} took the plan of ${txn.txnId}, which was ${facts.decision ?? "not decided"}`,
      );
    if (facts.applied.has(id)) this.fail("atomicity", `${id} took the plan of ${txn.txnId} twice`);
    // A schedule is adopted, not entered at a boundary: its plans are entered as its changes come.
    const already =
      isScheduleKey(txn.plan.planId) ||
      (running !== null &&
        running.activationWallMs === txn.activationWallMs &&
        running.planId === txn.plan.planId &&
        running.version === txn.plan.version);
    facts.applied.set(id, { learnedAtWallMs: now.wallMs, seq: ++this.seq, entered: already });
    this.schedules.applied(id, txn, facts.decidedSeq, now.wallMs);
    // A schedule ends the manual changes committed before it: those not due before it governs never
    // take effect (whether they do is the schedule invariant's to say).
    if (isScheduleKey(txn.plan.planId))
      for (const other of this.txns.values()) {
        const applied = other.applied.get(id);
        if (applied && other.decidedSeq < facts.decidedSeq && other.activationWallMs >= txn.activationWallMs)
          applied.entered = true;
      }
  }

  /** A gateway's participant took the committed cancel of `target` (its host withdrew it for good). */
  cancelTaken(id: string, target: string, now: Now): void {
    const facts = this.facts(target);
    const cancel = this.cancelOf(facts);
    if (!cancel) this.fail("atomicity", `${id} took back ${target}, which no committed cancel names`);
    this.cancelApplied(id, cancel, facts, now);
  }

  /**
   * A committed cancel taken at `id`: its target never takes effect there. A gateway that voted yes on
   * the cancel held the target back from that vote on, so it cannot have entered it.
   */
  private cancelApplied(id: string, cancel: TxnFacts, target: TxnFacts, now: Now): void {
    if (cancel.decision !== "committed")
      this.fail(
        "atomicity",
        `${id} took the cancel ${cancel.txnId}, which was ${cancel.decision ?? "not decided"}`,
      );
    if (cancel.applied.has(id)) return;
    cancel.applied.set(id, { learnedAtWallMs: now.wallMs, seq: ++this.seq, entered: true });
    if (target.enteredAt.has(id))
      this.fail(
        "atomicity",
        `${id} entered ${target.txnId}'s plan, which the committed cancel ${cancel.txnId} takes back`,
      );
    target.heldAt.delete(id);
    target.cancelledAt.add(id);
    const applied = target.applied.get(id);
    if (applied) applied.entered = true;
  }

  /** A restarted gateway found these committed in its store: taken, even if it went down before it said so. */
  committedOnDisk(id: string, txns: readonly PreparedTxn[], now: Now, running: RunningChange | null): void {
    for (const txn of txns)
      if (!this.txns.get(txn.txnId)?.applied.has(id)) this.applied(id, txn, now, running);
    // A restarted gateway takes up the newest change whose instant has passed; when that is a schedule,
    // it starts with the plan the schedule has in force (no entry at a boundary): the older ones are
    // superseded.
    const passed = [...this.txns.values()]
      .filter((f) => f.decision === "committed" && f.applied.has(id) && f.activationWallMs <= now.wallMs)
      .sort((a, b) => a.activationWallMs - b.activationWallMs || a.decidedSeq - b.decidedSeq);
    const newest = passed.at(-1);
    if (newest && isScheduleKey(newest.plan.planId)) this.supersede(id, newest.activationWallMs, newest.plan);
  }

  signal(id: string, event: SignalEvent, now: Now): void {
    this.schedules.signal(id, event, now.wallMs);
    if (event.type === "plan-activated" && event.txnId?.startsWith("schedule "))
      this.scheduledEntry(id, event);
    // Only a schedule puts a simulated intersection in flash: it supersedes the changes due by then (one
    // the controller had already chosen for its next cycle is dropped with that cycle).
    if (event.type === "mode" && event.mode === "flash" && event.previous !== "flash")
      this.supersede(id, now.wallMs + this.boundarySlackMs, null);
    if (event.type === "plan-activated") {
      // The change entered (the latest one taken with this plan and instant), and every older one
      // (an earlier instant, or the same instant committed before it) that it supersedes.
      // (One already counted as superseded by a schedule may still be entered: the schedule invariant
      // says whether it may run.)
      const candidates = [...this.txns.values()]
        .filter((f) => {
          const applied = f.applied.get(id);
          return applied && f.plan.planId === event.planId && f.activationWallMs === event.activationWallMs;
        })
        .sort((a, b) => (a.applied.get(id)?.seq ?? 0) - (b.applied.get(id)?.seq ?? 0));
      // A change held back for a cancel, or cancelled, must never be entered: the entry is another
      // change's with the same plan and instant, or a broken cancel.
      const takenBack = (f: TxnFacts) =>
        f.heldAt.has(id) || f.cancelledAt.has(id) || this.cancelOf(f)?.participants.includes(id) === true;
      const entered = candidates.filter((f) => !takenBack(f)).at(-1);
      if (!entered) {
        const broken = candidates.at(-1);
        if (!broken) return;
        const cancel = this.cancelOf(broken);
        this.fail(
          "atomicity",
          `${id} entered ${broken.txnId}'s plan, which ${cancel ? `the committed cancel ${cancel.txnId} takes back` : "it holds back while in doubt about a cancel of it"}`,
        );
      }
      entered.enteredAt.add(id);
      if (now.wallMs < entered.activationWallMs - IN_STEP_TOLERANCE_MS)
        this.fail(
          "agreement-in-time",
          `${id} entered ${entered.txnId}'s plan ${entered.activationWallMs - now.wallMs} ms early`,
        );
      const seq = entered.applied.get(id)?.seq ?? 0;
      for (const facts of this.txns.values()) {
        const applied = facts.applied.get(id);
        if (!applied || applied.entered) continue;
        if (
          facts.activationWallMs < entered.activationWallMs ||
          (facts.activationWallMs === entered.activationWallMs && applied.seq <= seq)
        )
          applied.entered = true;
      }
    } else if (event.type === "plan-rejected") {
      this.fail(
        "durability",
        `${id}'s controller refused plan ${event.planId} of a committed change: ${event.reason}`,
      );
    } else if (event.type === "cycle-start") {
      // A cycle boundary past the activation instant of a change this gateway knew in time must be the
      // change's own: every participant enters at its first boundary at or after the agreed instant.
      const due = now.wallMs - this.boundarySlackMs;
      const schedules = this.schedulesTaken(id);
      for (const facts of this.txns.values()) {
        const applied = facts.applied.get(id);
        if (!applied || applied.entered) continue;
        // Held back while a cancel of it is in doubt here: entered late if the cancel aborts. And one
        // superseded by a change taken after it for the same instant, held back or cancelled itself.
        if (facts.heldAt.has(id) || this.supersededAt(id, facts)) continue;
        // A schedule committed after this change governs from its instant: what runs since is the
        // schedule invariant's to say. Under a schedule, a manual change ends the one committed before
        // it (it replaces its override), which may never take effect.
        if (schedules.some((s) => s.decidedSeq > facts.decidedSeq && s.activationWallMs <= now.wallMs))
          continue;
        if (schedules.length > 0 && this.endedByLater(id, facts)) continue;
        if (this.schedules.overrideEnded(id, facts.txnId, now.wallMs)) continue;
        if (facts.activationWallMs <= due && applied.learnedAtWallMs <= due)
          this.fail(
            "agreement-in-time",
            `${id} began another cycle of ${event.planId} ${now.wallMs - facts.activationWallMs} ms after the activation instant of ${facts.txnId} (${facts.plan.planId}), which it knew since ${facts.activationWallMs - applied.learnedAtWallMs} ms before`,
          );
      }
    }
  }

  /** A change for the same instant was taken by `id` after `facts`: the controller keeps the last one. */
  private supersededAt(id: string, facts: TxnFacts): boolean {
    const seq = facts.applied.get(id)?.seq ?? 0;
    for (const other of this.txns.values()) {
      const applied = other.applied.get(id);
      if (
        other !== facts &&
        applied &&
        other.activationWallMs === facts.activationWallMs &&
        applied.seq > seq
      )
        if (cancelTarget(other.plan.planId) === null) return true;
    }
    return false;
  }

  /** A change committed after `facts` was taken by `id` before the instant of `facts`. */
  private endedByLater(id: string, facts: TxnFacts): boolean {
    for (const other of this.txns.values()) {
      const applied = other.applied.get(id);
      if (applied && other.decidedSeq > facts.decidedSeq && applied.learnedAtWallMs <= facts.activationWallMs)
        return true;
    }
    return false;
  }

  /** The committed schedules `id` took. */
  private schedulesTaken(id: string): TxnFacts[] {
    return [...this.txns.values()].filter(
      (f) => f.decision === "committed" && f.applied.has(id) && isScheduleKey(f.plan.planId),
    );
  }

  /**
   * A scheduled change entered (its plan from a common boundary): every change taken here before that
   * instant, and one for the same instant and plan, is superseded by it (the controller takes the latest
   * change due at a boundary).
   */
  private scheduledEntry(id: string, event: Extract<SignalEvent, { type: "plan-activated" }>): void {
    this.supersede(id, event.activationWallMs, event);
  }

  /** Changes taken by `id` due before `instant` (or at it, for the same plan) are entered or superseded. */
  private supersede(id: string, instant: number, plan: { planId: string; version: number } | null): void {
    for (const facts of this.txns.values()) {
      const applied = facts.applied.get(id);
      if (!applied || applied.entered) continue;
      const samePlan =
        plan === null || (facts.plan.planId === plan.planId && facts.plan.version === plan.version);
      if (facts.activationWallMs < instant || (facts.activationWallMs === instant && samePlan))
        applied.entered = true;
    }
  }

  // --- after healing ---

  /** Every transaction ended, nobody in doubt, no lock held, and each intersection runs its newest committed plan. */
  /** Within the bound the timeouts imply after healing: every transaction ended, nobody in doubt, no lock held. */
  quiescent(view: CorridorView, boundMs: number): void {
    const after = `${Math.round(boundMs / 1000)} s after healing`;
    if (view.coordinatorsBusy.length > 0)
      this.fail("liveness", `transactions still running ${after}: ${view.coordinatorsBusy.join(", ")}`);
    for (const g of view.gateways) {
      if (g.inDoubt) this.fail("liveness", `${g.id} is still in doubt about ${g.inDoubt} ${after}`);
      if (g.lease) this.fail("liveness", `${g.id}'s lock is still held (${g.lease}) ${after}`);
    }
  }

  /** At the end: every committed change taken everywhere, nothing else taken, the newest one running. */
  final(view: CorridorView): void {
    for (const facts of this.txns.values()) {
      for (const id of facts.participants) {
        const took = facts.applied.has(id);
        if (facts.decision === "committed" && !took)
          this.fail("atomicity", `${facts.txnId} committed, but ${id} never took its plan`);
        if (facts.decision !== "committed" && took)
          this.fail("atomicity", `${id} took ${facts.txnId}, which was not committed`);
      }
    }
    for (const g of view.gateways) {
      if (this.schedules.governed(g.id)) {
        this.scheduleAtEnd(g);
        continue;
      }
      const newest = [...this.txns.values()]
        .filter(
          (f) =>
            f.decision === "committed" &&
            f.participants.includes(g.id) &&
            cancelTarget(f.plan.planId) === null,
        )
        .sort(
          (a, b) =>
            a.activationWallMs - b.activationWallMs ||
            (a.applied.get(g.id)?.seq ?? 0) - (b.applied.get(g.id)?.seq ?? 0),
        )
        .at(-1);
      // Its newest change was taken back: what runs is what ran before it (not checked here; that it
      // was never entered, the cancel's atomicity, is checked as it happens).
      if (newest && this.cancelOf(newest) !== null) continue;
      if (newest && (newest.plan.planId !== g.plan.planId || newest.plan.version !== g.plan.version))
        this.fail(
          "durability",
          `${g.id} runs ${g.plan.planId} v${g.plan.version}, but its newest committed change ${newest.txnId} is ${newest.plan.planId} v${newest.plan.version}`,
        );
    }
  }

  /** At the end, an intersection governed by a schedule runs what it has in force (or its override's plan). */
  private scheduleAtEnd(g: CorridorView["gateways"][number]): void {
    const expected = this.schedules.expectedAtEnd(g.id, g.wallMs);
    if (expected === null) return;
    const runs = g.mode === "flash" ? "flash" : g.plan.planId;
    if (!expected.includes(runs))
      this.fail(
        "schedule-agreement",
        `${g.id} runs ${runs} (${g.mode}) at the end, but by its committed schedule and overrides it must run ${expected.join(" or ")}`,
      );
  }
}
