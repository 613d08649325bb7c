import { nextCommonBoundary } from "../../gateway/core/corridor/boundary.js";
import type { PreparedTxn } from "../../gateway/core/corridor/participant.js";
import { IN_STEP_TOLERANCE_MS } from "../../gateway/core/model.js";
import {
  actionLabel,
  changeInForce,
  nextChange,
  sameAction,
  type Schedule,
  type ScheduledChange,
} from "../../gateway/core/schedule/calendar.js";
import { isScheduleKey } from "../../gateway/core/schedule/committed-change.js";
import { HAND_OVER_AHEAD_MS, LATE_CHANGE_MARGIN_MS } from "../../gateway/core/schedule/schedule-runner.js";
import type { SignalEvent } from "../../gateway/core/sequencer.js";
import type { TimeReference } from "../../gateway/core/time/time-reference.js";

/**
 * The schedule invariant (issue 15), checked from outside the gateways: the checker knows which schedule
 * each intersection must run by (the newest committed schedule it took, in commit order, as the gateways
 * adopt them) and which manual plan changes override it, and computes from the calendar alone — never
 * from the gateways' runners — what must run and from which common cycle boundary.
 *
 * For every intersection governed by a committed schedule S with no manual override in force:
 * 1. in step, it runs the plan S has in force (`flash` runs no cycle), once the first common cycle
 *    boundary at or after the change's instant has passed (a cycle of another plan begun after it,
 *    beyond the boundary slack, breaks it);
 * 2. entering a scheduled change it knew in time (it held S and was up `LATE_CHANGE_MARGIN_MS` before the
 *    instant), from a running sequence, it enters from the first common cycle boundary at or after the
 *    instant (the activation instant handed to its controller), the same boundary as every other
 *    intersection that entered that change, and never before it (beyond the in-step tolerance);
 * 3. at the end of the run, healed for minutes, it runs what S has in force (under an override: the
 *    override's plan), once a cycle and a hand-over have passed since the last change.
 *
 * A manual change overrides S from when it was learned (or its instant) until its stated end; where two
 * pushes raced, both orders of taking them are accepted (`overrides`).
 */

/** A schedule a coordinator pushed, as the world generated it (the checker's own copy). */
export interface PushedSchedule {
  readonly schedule: Schedule;
  readonly timeReference: TimeReference;
  /** Each plan's cycle, by plan id. */
  readonly cycleMs: ReadonlyMap<string, number>;
}

interface Adopted {
  readonly txn: PreparedTxn;
  readonly pushed: PushedSchedule;
  readonly decidedSeq: number;
  readonly learnedAtWallMs: number;
}

interface Manual {
  readonly txn: PreparedTxn;
  readonly decidedSeq: number;
  readonly learnedAtWallMs: number;
}

interface GatewayFacts {
  readonly adopted: Adopted[];
  readonly manuals: Manual[];
  /** Local wall time of the latest (re)start. */
  startedAtWallMs: number;
  /** The sequence has begun a cycle since the last (re)start, flash or stop: it runs normally. */
  running: boolean;
}

interface Entry {
  readonly id: string;
  readonly activationWallMs: number;
  readonly atWallMs: number;
}

/** A violation of the schedule invariant: what to say. */
export type Fail = (message: string) => never;

const iso = (ms: number) => new Date(ms).toISOString();

/** Events looked back at for the start of a run of events with one action (a day holds at most 48). */
const MAX_LOOK_BACK = 200;

/**
 * The instant the action in force at `wallMs` began to govern, no earlier than `fromWallMs` (the
 * schedule's start): an event that repeats the action in force is no change.
 */
function changedAt(schedule: Schedule, change: ScheduledChange, fromWallMs: number): number {
  let c = change;
  for (let i = 0; i < MAX_LOOK_BACK && c.atWallMs > fromWallMs; i++) {
    const before = changeInForce(schedule, c.atWallMs - 1);
    if (!sameAction(before.action, c.action)) return c.atWallMs;
    c = before;
  }
  return Math.max(c.atWallMs, fromWallMs);
}

export class ScheduleAgreement {
  private readonly pushed = new Map<string, PushedSchedule>();
  private readonly gateways = new Map<string, GatewayFacts>();
  /** Per scheduled change (schedule transaction, change instant): who entered it from which boundary. */
  private readonly entries = new Map<string, Entry[]>();
  /** Cycle starts and entries the invariant looked at (a run that checks nothing proves nothing). */
  readonly counters = { inStepCycles: 0, scheduledEntries: 0 };

  constructor(
    /** The longest time between two ticks of a gateway's schedule shell. */
    private readonly scheduleTickMs: number,
    /** Largest lateness at which a cycle boundary may still fall after the instant it was planned for. */
    private readonly boundarySlackMs: number,
    private readonly fail: Fail,
  ) {}

  schedulePushed(txnId: string, pushed: PushedSchedule): void {
    this.pushed.set(txnId, pushed);
  }

  private facts(id: string): GatewayFacts {
    let facts = this.gateways.get(id);
    if (!facts) {
      facts = { adopted: [], manuals: [], startedAtWallMs: -Infinity, running: false };
      this.gateways.set(id, facts);
    }
    return facts;
  }

  gatewayStarted(id: string, nowWallMs: number): void {
    const facts = this.facts(id);
    facts.startedAtWallMs = nowWallMs;
    facts.running = false;
  }

  /** A committed change taken by `id` (learned at its own wall time), with its decision's order. */
  applied(id: string, txn: PreparedTxn, decidedSeq: number, learnedAtWallMs: number): void {
    const facts = this.facts(id);
    if (!isScheduleKey(txn.plan.planId)) {
      facts.manuals.push({ txn, decidedSeq, learnedAtWallMs });
      return;
    }
    const pushed = this.pushed.get(txn.txnId);
    if (!pushed) return this.fail(`${id} took schedule ${txn.txnId}, which no coordinator pushed`);
    facts.adopted.push({ txn, pushed, decidedSeq, learnedAtWallMs });
  }

  /** Has `id` taken a committed schedule? (Then the schedule, not the newest plan change, says what runs.) */
  governed(id: string): boolean {
    return (this.gateways.get(id)?.adopted.length ?? 0) > 0;
  }

  signal(id: string, event: SignalEvent, nowWallMs: number): void {
    const facts = this.facts(id);
    if (event.type === "mode") {
      // Anything else runs no schedule: start-up, flash, stopping, and a maintenance hold ("hold"), which
      // keeps one stage and waits for its release before the next plan (the next cycle start says so).
      if (event.mode !== "coordinated" && event.mode !== "transition") facts.running = false;
    } else if (event.type === "plan-activated") {
      if (event.txnId?.startsWith("schedule ") && facts.running)
        this.entered(id, facts, event.planId, event.activationWallMs, nowWallMs);
    } else if (event.type === "cycle-start") {
      facts.running = true;
      if (Math.abs(event.offsetErrorMs) <= IN_STEP_TOLERANCE_MS)
        this.inStepCycle(id, facts, event.planId, nowWallMs);
    }
  }

  /** The schedule `id` must run by: the newest committed schedule it took (commit order, as the gateways adopt them). */
  private governing(facts: GatewayFacts): Adopted | null {
    let newest: Adopted | null = null;
    for (const a of facts.adopted) if (!newest || a.decidedSeq > newest.decidedSeq) newest = a;
    return newest;
  }

  /**
   * The manual overrides over `gov`, as intervals of the intersection's wall time, from its plan and
   * until its stated end (`--until`, the next scheduled change, `--hold`: until a later schedule):
   * - a manual change committed after the schedule, from when it was learned (the schedule's waiting
   *   change is withdrawn then) or its instant if earlier;
   * - one committed before the schedule but due after the schedule's instant (the two pushes raced),
   *   from its instant: by commit order the schedule ended it, by instant order it overrides the
   *   schedule from its instant; which order a gateway gives racing changes is a design choice, not
   *   agreement (every intersection makes the same one), so the invariant accepts both.
   * A manual change replaced by a later one keeps its whole window (either order may be the gateway's),
   * marked as possibly ended (`ambiguous`), as a raced one is.
   */
  private overrides(
    facts: GatewayFacts,
    gov: Adopted,
  ): { from: number; to: number; at: number; planId: string; ambiguous: boolean }[] {
    const from0 = gov.txn.activationWallMs;
    return facts.manuals.flatMap((m) => {
      const at = m.txn.activationWallMs;
      const after = m.decidedSeq > gov.decidedSeq;
      if (!after && at < from0) return [];
      const until = m.txn.plan.until;
      let end: number;
      if (until === "hold") end = Infinity;
      else if (typeof until === "number") end = until;
      else end = nextChange(gov.pushed.schedule, Math.max(at, from0))?.atWallMs ?? Infinity;
      const from = after ? Math.min(m.learnedAtWallMs, at) : at - IN_STEP_TOLERANCE_MS;
      const replaced = facts.manuals.some((later) => later.decidedSeq > m.decidedSeq);
      return [{ from, to: end, at, planId: m.txn.plan.planId, ambiguous: !after || replaced }];
    });
  }

  /**
   * Has the override of manual change `txnId` at `id` ended by `nowWallMs` (its stated end is a
   * hand-over away, under the schedule it was committed over)? Then the schedule, not that change, says
   * what runs.
   */
  overrideEnded(id: string, txnId: string, nowWallMs: number): boolean {
    const facts = this.gateways.get(id);
    const m = facts?.manuals.find((x) => x.txn.txnId === txnId);
    if (!facts || !m) return false;
    // The schedule it was committed over.
    const over = this.governing({
      ...facts,
      adopted: facts.adopted.filter((a) => a.decidedSeq < m.decidedSeq),
    });
    if (!over) return false;
    const window = this.overrides({ ...facts, manuals: [m] }, over)[0];
    // The runner ends an override a hand-over ahead of its end (and withdraws its plan if not yet due).
    return window !== undefined && window.to - HAND_OVER_AHEAD_MS - this.scheduleTickMs <= nowWallMs;
  }

  /** Check 1: an in-step cycle runs the plan the schedule has in force once its boundary has passed. */
  private inStepCycle(id: string, facts: GatewayFacts, planId: string, b: number): void {
    const gov = this.governing(facts);
    if (!gov || b < gov.txn.activationWallMs) return;
    const overrides = this.overrides(facts, gov);
    if (overrides.some((o) => o.from <= b && b < o.to)) return;
    this.counters.inStepCycles++;
    const { schedule, timeReference, cycleMs } = gov.pushed;
    const change = changeInForce(schedule, b);
    const expected = actionLabel(change.action);
    if (planId === expected) return;
    const maxCycle = Math.max(...cycleMs.values());
    // When an override ends, the schedule takes over with the change in force a hand-over ahead, from
    // its boundary: the override's plan may run until then.
    const overrideEnd = Math.max(-Infinity, ...overrides.map((o) => o.to).filter((to) => to <= b));
    if (b < overrideEnd + HAND_OVER_AHEAD_MS + this.scheduleTickMs + maxCycle + this.boundarySlackMs) return;
    const lateStart =
      Math.max(gov.learnedAtWallMs, facts.startedAtWallMs) + LATE_CHANGE_MARGIN_MS + this.scheduleTickMs;
    const takeover = Math.max(changedAt(schedule, change, gov.txn.activationWallMs), lateStart);
    // A scheduled flash begins at a boundary of the plan it ends.
    const cycle = cycleMs.get(expected) ?? cycleMs.get(planId) ?? maxCycle;
    const due = nextCommonBoundary(takeover, timeReference, cycle);
    if (b < due + this.boundarySlackMs) return;
    // A change the next one follows within a hand-over of its boundary is skipped (the runner hands
    // over what is in force a hand-over ahead): until then, the plan before it may run.
    const next = nextChange(schedule, change.atWallMs, 2);
    if (next && next.atWallMs - HAND_OVER_AHEAD_MS - this.scheduleTickMs <= due + IN_STEP_TOLERANCE_MS)
      return;
    this.fail(
      `${id} began an in-step cycle of ${planId} at ${iso(b)}, but schedule ${schedule.id} v${schedule.version} ` +
        `(${gov.txn.txnId}) has ${expected} in force since ${iso(takeover)} (day plan ${change.dayPlan}), ` +
        `due from the common cycle boundary ${iso(due)}`,
    );
  }

  /** Check 2: a scheduled change known in time is entered from its common cycle boundary, as by every peer. */
  private entered(
    id: string,
    facts: GatewayFacts,
    planId: string,
    activationWallMs: number,
    w: number,
  ): void {
    const gov = this.governing(facts);
    if (!gov) return;
    const { schedule, timeReference, cycleMs } = gov.pushed;
    const change = changeInForce(schedule, w + IN_STEP_TOLERANCE_MS);
    if (actionLabel(change.action) !== planId) return;
    const instant = changedAt(schedule, change, gov.txn.activationWallMs);
    const knewAt = Math.max(gov.learnedAtWallMs, facts.startedAtWallMs) + this.scheduleTickMs;
    if (knewAt > instant - LATE_CHANGE_MARGIN_MS) return;
    const overrides = this.overrides(facts, gov);
    if (overrides.some((o) => o.from <= w && o.to > instant - HAND_OVER_AHEAD_MS - this.scheduleTickMs))
      return;
    const cycle = cycleMs.get(planId);
    if (cycle === undefined) return;
    this.counters.scheduledEntries++;
    const boundary = nextCommonBoundary(instant, timeReference, cycle);
    const what = `${id} entered ${planId} of schedule ${schedule.id} v${schedule.version} (${gov.txn.txnId}, change at ${iso(instant)})`;
    if (activationWallMs !== boundary)
      this.fail(
        `${what} from ${iso(activationWallMs)}, not from the first common cycle boundary at or after the change, ${iso(boundary)}`,
      );
    if (w < boundary - IN_STEP_TOLERANCE_MS)
      this.fail(`${what} at ${iso(w)}, ${boundary - w} ms before its boundary ${iso(boundary)}`);
    const key = `${gov.txn.txnId}@${instant}`;
    const peers = this.entries.get(key) ?? [];
    const other = peers.find((p) => p.id !== id && p.activationWallMs !== activationWallMs);
    if (other)
      this.fail(
        `${what} from ${iso(activationWallMs)}, but ${other.id} entered it from ${iso(other.activationWallMs)}`,
      );
    peers.push({ id, activationWallMs, atWallMs: w });
    this.entries.set(key, peers);
  }

  /**
   * At the end, after healing: what `id` may run (plan ids, or `flash`), or null when anything goes
   * (no schedule; a change whose boundary has not passed yet). `nowWallMs`: its own clock.
   */
  expectedAtEnd(id: string, nowWallMs: number): readonly string[] | null {
    const facts = this.gateways.get(id);
    const gov = facts && this.governing(facts);
    if (!facts || !gov) return null;
    const overrides = this.overrides(facts, gov);
    const inForce = overrides.filter((o) => o.from <= nowWallMs && nowWallMs < o.to);
    const change = changeInForce(gov.pushed.schedule, nowWallMs);
    const expected = actionLabel(change.action);
    // Within a cycle and a hand-over of the last change (a scheduled change, an override's start or
    // end, a restart), the previous plan may still run.
    const events = overrides
      .flatMap((o) => [o.at, ...(o.to <= nowWallMs ? [o.to] : [])])
      .filter((t) => t <= nowWallMs);
    const since = Math.max(
      changedAt(gov.pushed.schedule, change, gov.txn.activationWallMs),
      facts.startedAtWallMs,
      ...events,
    );
    const maxCycle = Math.max(...gov.pushed.cycleMs.values());
    if (nowWallMs < since + HAND_OVER_AHEAD_MS + 2 * maxCycle + this.boundarySlackMs) return null;
    // A raced or replaced override may have been ended: then the schedule's plan runs.
    if (inForce.length > 0)
      return [...inForce.map((o) => o.planId), ...(inForce.every((o) => o.ambiguous) ? [expected] : [])];
    return [expected];
  }
}
