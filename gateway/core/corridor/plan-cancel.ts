/**
 * A plan cancel (issue 20, item 6): a corridor transaction whose committed effect is that another
 * transaction's change, committed and still waiting for its instant, never takes effect — at every one
 * of its intersections, or at none. It travels the same two-phase commit as a plan, with the same leases,
 * fencing tokens and signed decisions; its participants are the target's, and its activation instant is
 * the target's: a gateway votes yes only while there is time for the decision to reach everyone before
 * the target would take effect (the same timing rule as a plan change's).
 *
 * In the stores and records it is named by a key that no plan or schedule id can have (ids are letters,
 * digits, `-` and `_`), so that it is never taken for a plan to run.
 */

const CANCEL_PREFIX = "cancel:";

/** The plan key of a cancel of transaction `target`. */
export function cancelKey(target: string): string {
  return `${CANCEL_PREFIX}${target}`;
}

/** The transaction a cancel's plan key cancels; null for a plan or a schedule key. */
export function cancelTarget(planId: string): string | null {
  return planId.startsWith(CANCEL_PREFIX) ? planId.slice(CANCEL_PREFIX.length) : null;
}

/**
 * Why this intersection cannot vote yes on cancelling `target`, or null when it can: the target must be
 * a change committed here (a participant of it), not a cancel itself, and not already cancelled.
 */
export function cancelRefusal(
  target: string,
  stored: { readonly phase: string; readonly planId: string; readonly cancelledBy: string | null } | null,
  me: string,
): string | null {
  if (stored === null)
    return `${me} took no part in transaction ${target}: nothing to cancel here (check the transaction id with greenwave status --wide or the audit trail)`;
  if (stored.phase !== "committed")
    return `transaction ${target} is ${stored.phase} at ${me}, not committed: there is no waiting change of it to cancel`;
  if (cancelTarget(stored.planId) !== null)
    return `transaction ${target} is itself a cancel: a cancel cannot be cancelled`;
  if (stored.cancelledBy !== null)
    return `transaction ${target} was already cancelled at ${me} by transaction ${stored.cancelledBy}`;
  return null;
}
