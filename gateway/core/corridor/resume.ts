import { isScheduleKey } from "../schedule/committed-change.js";
import type { Outcome, PreparedTxn } from "./participant.js";

/** A transaction as a participant's store keeps it. */
export interface StoredTxn {
  readonly txn: PreparedTxn;
  readonly phase: "prepared" | Outcome;
  /**
   * Taken back by a committed cancel (core/corridor/plan-cancel.ts): never handed over, but it still
   * superseded the changes committed before it for the same instant, as it did when it was handed.
   */
  readonly cancelled?: boolean;
}

export interface PlanInForceRef {
  readonly planId: string;
  readonly version: number;
  /** The instant of the committed change that brought it in force; null for a configured plan. */
  readonly activationWallMs: number | null;
}

/**
 * Was this change entered or superseded when the plan in force was taken? Yes for an earlier instant
 * (the controller takes the latest change due at a boundary). For the same instant, only if it is the
 * same plan: a different one was committed after that entry (learned late) and must still be taken.
 */
function enteredWith(t: PreparedTxn, inForce: PlanInForceRef | null): boolean {
  if (inForce?.activationWallMs == null) return false;
  if (t.activationWallMs !== inForce.activationWallMs) return t.activationWallMs < inForce.activationWallMs;
  return t.plan.planId === inForce.planId && t.plan.version === inForce.version;
}

/**
 * What a restarted participant hands its controller again: the committed plan changes it had not yet
 * entered when it went down. Pure: the gateway and the simulator both decide with it.
 *
 * Changes entered with the plan in force are skipped (`enteredWith`). Of those whose instant has passed since, only the newest matters (it supersedes the others at
 * the first cycle boundary); every one still ahead is kept, the newest first when there are more
 * than `max`. Of changes for the same instant only the last committed is kept, as the controller
 * would have kept it.
 *
 * `newestFirst`: the store's committed transactions, most recently written first.
 */
export function committedToResume(
  newestFirst: readonly StoredTxn[],
  inForce: PlanInForceRef | null,
  nowWallMs: number,
  max: number,
): PreparedTxn[] {
  const byCommit = newestFirst
    .filter((s) => s.phase === "committed" && s.txn.coordinator !== "")
    .map((s) => s.txn)
    .reverse();
  // Where a schedule runs, changes are taken in commit order (core/schedule/schedule-runner.ts): one
  // committed after another, for an instant not later than its, ended it before it took effect.
  const underSchedule = byCommit.some((t) => isScheduleKey(t.plan.planId));
  const live = underSchedule
    ? byCommit.filter((t, i) => !byCommit.slice(i + 1).some((c) => c.activationWallMs <= t.activationWallMs))
    : byCommit;
  // A stable sort: equal instants stay in commit order.
  const committed = [...live].sort((a, b) => a.activationWallMs - b.activationWallMs);
  // Of changes for the same instant, the controller keeps only the last one.
  const cancelled = new Set(newestFirst.filter((s) => s.cancelled === true).map((s) => s.txn.txnId));
  const distinct = committed
    .filter((t, i) => committed[i + 1]?.activationWallMs !== t.activationWallMs)
    .filter((t) => !enteredWith(t, inForce) && !cancelled.has(t.txnId));
  const passed = distinct.filter((t) => t.activationWallMs <= nowWallMs);
  const ahead = distinct.filter((t) => t.activationWallMs > nowWallMs);
  const newestPassed = passed.at(-1);
  return [...(newestPassed ? [newestPassed] : []), ...ahead].slice(-max);
}
