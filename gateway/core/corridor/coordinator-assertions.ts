import { invariant } from "../invariant.js";
import type { CoordinatorEvent, CoordinatorState, CoordinatorStep } from "./coordinator.js";

/**
 * What every step guarantees (cheap: linear in the step's effects, plus the participants only when a
 * vote or an acknowledgement was counted). A decision, once made, never changes, and every decision
 * sent is that one: never both. A COMMIT is sent only after the commit point is force-written (in
 * this step, or an earlier one). Only participants' votes and acknowledgements are counted.
 */
export function assertCoordinatorStep(
  before: CoordinatorState,
  event: CoordinatorEvent,
  step: CoordinatorStep,
): void {
  const { state, effects } = step;
  invariant(
    before.outcome === null || state.outcome === before.outcome,
    () => `transaction ${state.txnId} decided ${before.outcome ?? ""}, then ${state.outcome ?? "undecided"}`,
  );
  let commitDurable = before.outcome === "committed";
  for (const effect of effects) {
    if (effect.type === "persist-commit") {
      invariant(
        state.participants.every((id) => state.votes[id]?.yes),
        () => `transaction ${state.txnId} committed without a yes vote from every participant`,
      );
      commitDurable = true;
    }
    if (effect.type === "send" && effect.message.type === "decision") {
      const { outcome } = effect.message;
      invariant(
        outcome === state.outcome,
        () =>
          `${outcome} sent to ${effect.to} for transaction ${state.txnId} decided ${state.outcome ?? "not yet"}`,
      );
      invariant(
        outcome !== "committed" || commitDurable,
        () => `COMMIT of ${state.txnId} sent to ${effect.to} before the commit point was force-written`,
      );
    }
  }
  if (state.votes !== before.votes || state.acked !== before.acked)
    invariant(
      "from" in event &&
        state.participants.includes(event.from) &&
        state.acked.length <= state.participants.length,
      () => `transaction ${state.txnId} counted an answer from a non-participant`,
    );
}
