import { canonicalJson } from "../canonical-json.js";
import type { Outcome } from "./participant.js";

/**
 * Decisions that prove their origin (issue 20, item 2). Every coordinator run makes an Ed25519 key
 * pair of its own, for that one transaction, and sends the public key with its PREPARE; a participant
 * keeps it with PREPARED. The run signs its decision — the transaction, the outcome and the plan (id,
 * version, content digest) — and every copy of that decision carries the signature: the COMMIT or
 * ABORT it sends, its answers, its retained decision record, and the answers of peers that forward it
 * during cooperative termination. So a participant in doubt can take its decision from anyone who
 * holds a copy, and from no one who does not: another party's credentials cannot make one up, and a
 * signature made for another transaction (another key) or the other outcome does not verify.
 *
 * The key pair lives only as long as the run that made it: the signature of a commit is written with
 * the commit record, so a coordinator that restarts resends the signed COMMIT; one that restarts
 * before deciding can never sign — its transaction is aborted (presumed abort), which it says itself.
 *
 * This module is the pure part (what is signed); the cryptography (node:crypto) is the shell's
 * (gateway/shell/corridor/decision-keys.ts).
 */

/** Changing it voids every decision signature: a domain separator, apart from signed plans'. */
export const DECISION_CONTEXT = "greenwave/v1 corridor decision";

/** What a decision signature covers: the transaction, as both its coordinator and its participants know it. */
export interface DecidedTxn {
  readonly txnId: string;
  readonly coordinator: string;
  readonly plan: { readonly planId: string; readonly version: number; readonly digest?: string };
  readonly activationWallMs: number;
}

/** The bytes a decision key signs: canonical JSON (RFC 8785) of the context, the transaction and the outcome. */
export function decisionStatement(txn: DecidedTxn, outcome: Outcome): string {
  return canonicalJson({
    context: DECISION_CONTEXT,
    txnId: txn.txnId,
    coordinator: txn.coordinator,
    outcome,
    plan: { id: txn.plan.planId, version: txn.plan.version, digest: txn.plan.digest ?? null },
    activationWallMs: txn.activationWallMs,
  });
}

/**
 * What the shell found of a decision's signature, before the participant machine sees it: `valid` (it
 * verifies with the decision key of the transaction in doubt), `invalid` (it does not: made up, or made
 * for another transaction or the other outcome), or `absent` (no signature, or no key to check it
 * with: a transaction prepared before decisions were signed).
 */
export type DecisionProof = "valid" | "invalid" | "absent";
