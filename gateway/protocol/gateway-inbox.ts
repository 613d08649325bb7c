import type { LeaseRequest } from "../core/corridor/lease.js";
import type { DecisionProof } from "../core/corridor/decision-signature.js";
import type { Outcome, ParticipantEvent, PreparedTxn } from "../core/corridor/participant.js";
import { scheduleKey } from "../core/schedule/committed-change.js";
import { cancelKey } from "../core/corridor/plan-cancel.js";
import { KEYRING_KEY } from "../core/corridor/keyring.js";
import type { CorridorBody } from "./corridor-messages.js";

/** What a message in a gateway's inbox is for: its lease authority, a PREPARE to check, its participant. */
export type GatewayInbound =
  | { readonly kind: "authority"; readonly event: LeaseRequest }
  /** The shell checks it (plan, clocks, room) before the participant machine sees it. */
  | { readonly kind: "prepare"; readonly txn: PreparedTxn }
  | { readonly kind: "participant"; readonly event: ParticipantEvent }
  /** A coordinator's message, or nothing to act on. */
  | { readonly kind: "none" };

/**
 * Maps a corridor message to the gateway's machines, the same way in the gateway and in the
 * simulator. A decision or an answer names its sender as the inbox topic has it (the broker's ACL
 * vouches for it); whether it is the coordinator's, and its signature, are the participant's to judge
 * (`proof`: what the shell found of the signature, decision-signature.ts).
 */
export function gatewayInbound(
  envelope: { readonly from: string; readonly body: CorridorBody },
  proof: (txnId: string, outcome: Outcome, signature: string | null) => DecisionProof,
): GatewayInbound {
  const { from, body } = envelope;
  switch (body.type) {
    case "acquire":
      return {
        kind: "authority",
        event: { type: "acquire", holder: from, requestId: body.requestId, ttlMs: body.ttlMs },
      };
    case "renew":
      return {
        kind: "authority",
        event: { type: "renew", holder: from, token: body.token, ttlMs: body.ttlMs },
      };
    case "release":
      return { kind: "authority", event: { type: "release", holder: from, token: body.token } };
    case "prepare":
      return {
        kind: "prepare",
        txn: {
          txnId: body.txnId,
          coordinator: from,
          token: body.token,
          participants: body.participants,
          plan: {
            planId:
              body.plan.kind === "schedule"
                ? scheduleKey(body.plan.id)
                : body.plan.kind === "cancel"
                  ? cancelKey(body.cancels ?? "")
                  : body.plan.kind === "keyring"
                    ? KEYRING_KEY
                    : body.plan.id,
            version: body.plan.version,
            ...(body.plan.digest !== undefined ? { digest: body.plan.digest } : {}),
            ...(body.plan.until !== undefined ? { until: body.plan.until } : {}),
          },
          activationWallMs: body.activationWallMs,
          ...(body.decisionKey !== undefined ? { decisionKey: body.decisionKey } : {}),
        },
      };
    case "decision":
      return decisionFrom(from, body.txnId, body.outcome, "decision", body.signature ?? null, proof);
    case "inquiry":
      return { kind: "participant", event: { type: "inquiry", txnId: body.txnId, from } };
    case "answer":
      if (body.answer === "prepared") return { kind: "none" };
      return decisionFrom(from, body.txnId, body.answer, "answer", body.signature ?? null, proof);
    case "lease":
    case "vote":
    case "ack":
      return { kind: "none" };
  }
}

/** A decision or an answer as the participant machine takes it: its sender, its signature and what the shell found of it. */
function decisionFrom(
  from: string,
  txnId: string,
  outcome: Outcome,
  via: "decision" | "answer",
  signature: string | null,
  proof: (txnId: string, outcome: Outcome, signature: string | null) => DecisionProof,
): GatewayInbound {
  return {
    kind: "participant",
    event: {
      type: "decision",
      txnId,
      outcome,
      via,
      by: from,
      signature,
      proof: proof(txnId, outcome, signature),
    },
  };
}
