import type { Outcome, PreparedTxn } from "./participant.js";

/** A transaction as a participant's store keeps it. */
export interface StoredTxn {
  readonly txn: PreparedTxn;
  readonly phase: "prepared" | Outcome;
}

export interface PlanInForceRef {
  readonly planId: string;
  readonly version: number;
  /** The instant of the committed change that brought it in force; null for a configured plan. */
  readonly activationWallMs: number | null;
}

/**
 * What a restarted participant hands its controller again: the committed plan changes it had not yet
 * entered when it went down. Pure: the gateway and the simulator both decide with it.
 *
 * A change whose instant is at or before that of the change in force was entered or superseded
 * when that one was taken (the controller takes the latest change due at a boundary). Of those whose instant has passed since, only the newest matters (it supersedes the others at
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
  const candidates = newestFirst
    .filter((s) => s.phase === "committed" && s.txn.coordinator !== "")
    .map((s) => s.txn)
    .filter((t) => inForce?.activationWallMs == null || t.activationWallMs > inForce.activationWallMs)
    .reverse()
    // A stable sort: equal instants stay in commit order.
    .sort((a, b) => a.activationWallMs - b.activationWallMs);
  // Of changes for the same instant, the controller would keep only the last one anyway.
  const distinct = candidates.filter((t, i) => candidates[i + 1]?.activationWallMs !== t.activationWallMs);
  const passed = distinct.filter((t) => t.activationWallMs <= nowWallMs);
  const ahead = distinct.filter((t) => t.activationWallMs > nowWallMs);
  const newestPassed = passed.at(-1);
  return [...(newestPassed ? [newestPassed] : []), ...ahead].slice(-max);
}
