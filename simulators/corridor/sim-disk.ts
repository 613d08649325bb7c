import type { Outcome, PreparedTxn } from "../../gateway/core/corridor/participant.js";
import type { PlanInForceRef, StoredTxn } from "../../gateway/core/corridor/resume.js";
import { invariant } from "../../gateway/core/invariant.js";
import type { CommittedChange } from "../../gateway/core/schedule/committed-change.js";
import type {
  ParticipantDisk,
  ParticipantRecord,
  StoredTransactionRecord,
} from "../../gateway/shell/corridor/participant-ports.js";
import { cancelTarget } from "../../gateway/core/corridor/plan-cancel.js";
import { isKeyringKey } from "../../gateway/core/corridor/keyring.js";
import type { ScheduleInForce } from "../../gateway/store/schedule-records.js";
import type { SeededRandom } from "./random.js";

/** What a gateway's store holds, as far as the corridor protocol and the plan in force go. */
export interface DiskState {
  epoch: number;
  highestToken: number;
  /** By transaction id; `order` is the store's (updated time, row) order. */
  txns: Map<string, StoredTxn & { order: number; signature?: string; cancelledBy?: string }>;
  /**
   * Plan bodies by `planId@version`, written with PREPARED (the store's plans table): the first kept. A
   * schedule's body is kept under its schedule key, its plans under their own ids once it is committed.
   */
  plans: Map<string, CommittedChange>;
  /** The transaction each plan was first received with: an abort of it forgets the plan, as the store does. */
  planSources: Map<string, string>;
  planInForce: PlanInForceRef | null;
  /** The schedule that governs and the manual override over it (the store's `schedule_in_force`). */
  scheduleInForce: ScheduleInForce | null;
}

type Write = (disk: DiskState) => void;

function copy(d: DiskState): DiskState {
  return { ...d, txns: new Map(d.txns), plans: new Map(d.plans), planSources: new Map(d.planSources) };
}

/** What the store writes for a refusal of a transaction never prepared here: a row with no coordinator. */
const NO_TXN = {
  coordinator: "",
  token: 0,
  participants: [],
  plan: { planId: "", version: 0 },
  activationWallMs: 0,
};

/** As the store's `forgetPlanOfAborted` (plan-records.ts): a plan first seen with an aborted change, not in force. */
function forgetPlanOfAborted(d: DiskState, txnId: string): void {
  for (const [key, source] of d.planSources) {
    const inForce = d.planInForce && `${d.planInForce.planId}@${d.planInForce.version}` === key;
    if (source !== txnId || inForce) continue;
    d.plans.delete(key);
    d.planSources.delete(key);
  }
}

/**
 * A store that survives a crash the way SQLite in WAL mode does: writes are applied in order; a forced
 * write makes itself and every write before it durable; a crash keeps the durable state plus some
 * prefix of the writes since the last forced one (the seeded random picks how much).
 *
 * It is the participant's disk port (`ParticipantDisk`) with the semantics of `GatewayStore`'s corridor
 * tables; test/unit/participant-shell-divergence.test.ts runs both under the same interpreter and
 * compares what they hold.
 */
export class SimDisk implements ParticipantDisk {
  private durable: DiskState = {
    epoch: 0,
    highestToken: 0,
    txns: new Map(),
    plans: new Map(),
    planSources: new Map(),
    planInForce: null,
    scheduleInForce: null,
  };
  private unsynced: Write[] = [];
  /** What the running gateway reads. */
  live: DiskState = copy(this.durable);
  private order = 0;

  write(forced: boolean, change: Write): void {
    change(this.live);
    this.unsynced.push(change);
    if (forced) {
      for (const w of this.unsynced) w(this.durable);
      this.unsynced = [];
    }
  }

  crash(random: SeededRandom): number {
    const kept = random.int(0, this.unsynced.length);
    for (const w of this.unsynced.slice(0, kept)) w(this.durable);
    const lost = this.unsynced.length - kept;
    this.unsynced = [];
    this.live = copy(this.durable);
    return lost;
  }

  /**
   * A clean shutdown: the store is closed and the process exits while the machine stays up, so every
   * write it made is kept (SQLite's WAL holds each committed transaction once the process wrote it).
   */
  close(): void {
    for (const w of this.unsynced) w(this.durable);
    this.unsynced = [];
    this.live = copy(this.durable);
  }

  /** The store's transactions, newest first. */
  newestFirst(): StoredTxn[] {
    return [...this.live.txns.values()]
      .sort((a, b) => b.order - a.order)
      .map(({ txn, phase }) => ({ txn, phase }));
  }

  // --- the participant's disk port ---

  leaseEpoch(): number {
    return this.live.epoch;
  }

  persistLeaseEpoch(epoch: number): void {
    this.write(true, (d) => {
      d.epoch = epoch;
    });
  }

  /** As `GatewayStore.participantRecord`: outcomes and refusals apart, each to its own bound. */
  participantRecord(maxTombstones: number): ParticipantRecord {
    const rows = [...this.live.txns.values()].sort((a, b) => b.order - a.order);
    const outcomes = rows.filter((r) => r.txn.coordinator !== "").slice(0, maxTombstones + 1);
    return {
      highestToken: this.live.highestToken,
      prepared: rows.find((r) => r.phase === "prepared")?.txn ?? null,
      tombstones: outcomes
        .filter((r) => r.phase !== "prepared")
        .slice(0, maxTombstones)
        .reverse()
        .map((r) => ({
          txnId: r.txn.txnId,
          outcome: r.phase as Outcome,
          coordinator: r.txn.coordinator,
          ...(r.signature !== undefined ? { signature: r.signature } : {}),
        })),
      refusals: rows
        .filter((r) => r.txn.coordinator === "")
        .slice(0, maxTombstones)
        .map((r) => r.txn.txnId)
        .reverse(),
    };
  }

  persistPrepared(txn: PreparedTxn, planBody: CommittedChange | null, highestToken: number): void {
    const order = ++this.order;
    this.write(true, (d) => {
      d.txns.set(txn.txnId, { txn, phase: "prepared", order });
      const key = `${txn.plan.planId}@${txn.plan.version}`;
      // As the store: one content per (id, version), the first kept (plan-records.ts `writePlan`).
      if (planBody && !d.plans.has(key)) {
        d.plans.set(key, planBody);
        d.planSources.set(key, txn.txnId);
      }
      d.highestToken = highestToken;
    });
  }

  /** As `GatewayStore.persistOutcome`: a finished outcome is never overwritten (nor moved in the order). */
  persistOutcome(
    txnId: string,
    outcome: Outcome,
    forced: boolean,
    _atWallMs = 0,
    signature: string | null = null,
  ): void {
    const row = this.live.txns.get(txnId);
    if (row && row.phase !== "prepared") {
      invariant(row.phase === outcome, () => `transaction ${txnId} is ${row.phase} on disk: not ${outcome}`);
      return;
    }
    const order = ++this.order;
    this.write(forced, (d) => {
      const stored = d.txns.get(txnId);
      if (stored && stored.phase !== "prepared") return;
      d.txns.set(txnId, {
        txn: stored?.txn ?? { txnId, ...NO_TXN },
        phase: outcome,
        order,
        ...(signature !== null ? { signature } : {}),
      });
      if (outcome === "aborted") forgetPlanOfAborted(d, txnId);
      // As the store: a committed cancel takes its target back in the same write.
      const target = outcome === "committed" && stored ? cancelTarget(stored.txn.plan.planId) : null;
      const cancelled = target !== null ? d.txns.get(target) : undefined;
      if (target !== null && cancelled?.phase === "committed")
        d.txns.set(target, { ...cancelled, cancelledBy: txnId });
    });
  }

  planBody(planId: string, version: number): CommittedChange | null {
    return this.live.plans.get(`${planId}@${version}`) ?? null;
  }

  /** As `GatewayStore.committedTransactions`: changes only, no cancels or keyrings; a cancelled change marked. */
  committedTransactions(limit: number): StoredTxn[] {
    return [...this.live.txns.values()]
      .sort((a, b) => b.order - a.order)
      .filter(
        (r) =>
          r.phase === "committed" &&
          r.txn.coordinator !== "" &&
          cancelTarget(r.txn.plan.planId) === null &&
          !isKeyringKey(r.txn.plan.planId),
      )
      .slice(0, limit)
      .map(({ txn, phase, cancelledBy }) => ({
        txn,
        phase,
        ...(cancelledBy !== undefined ? { cancelled: true } : {}),
      }));
  }

  transactionRecord(txnId: string): StoredTransactionRecord | null {
    const row = this.live.txns.get(txnId);
    return row
      ? {
          txn: row.txn,
          phase: row.phase,
          planId: row.txn.plan.planId,
          activationWallMs: row.txn.activationWallMs,
          cancelledBy: row.cancelledBy ?? null,
        }
      : null;
  }

  planInForce(): PlanInForceRef | null {
    return this.live.planInForce;
  }

  // --- the schedule (as GatewayStore's recordPlan, setScheduleInForce and scheduleInForce) ---

  /**
   * A plan received otherwise than with a PREPARE (a committed schedule's): one content per (id,
   * version), the first kept, never forgotten with an aborted change. Lazy, as the store's own statement.
   */
  recordPlan(planId: string, version: number, body: CommittedChange, source: string): void {
    this.write(false, (d) => {
      const key = `${planId}@${version}`;
      if (d.plans.has(key)) return;
      d.plans.set(key, body);
      d.planSources.set(key, source);
    });
  }

  /** Forced: the schedule that governs and the override must survive a restart. */
  setScheduleInForce(record: ScheduleInForce): void {
    this.write(true, (d) => {
      d.scheduleInForce = record;
    });
  }

  scheduleInForce(): ScheduleInForce | null {
    return this.live.scheduleInForce;
  }
}
