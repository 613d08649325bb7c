import type { LeaseRequest } from "../core/corridor/lease.js";
import type { ParticipantEvent, PreparedTxn } from "../core/corridor/participant.js";
import { scheduleKey } from "../core/schedule/committed-change.js";
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
 * simulator. `preparedCoordinator`: the coordinator of the transaction the gateway is in doubt about,
 * whose answer to an inquiry is the decision itself.
 */
export function gatewayInbound(
  envelope: { readonly from: string; readonly body: CorridorBody },
  preparedCoordinator: string | null,
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
            planId: body.plan.kind === "schedule" ? scheduleKey(body.plan.id) : body.plan.id,
            version: body.plan.version,
            ...(body.plan.until !== undefined ? { until: body.plan.until } : {}),
          },
          activationWallMs: body.activationWallMs,
        },
      };
    case "decision":
      return {
        kind: "participant",
        event: {
          type: "decision",
          txnId: body.txnId,
          outcome: body.outcome,
          source: "coordinator",
          by: from,
        },
      };
    case "inquiry":
      return { kind: "participant", event: { type: "inquiry", txnId: body.txnId, from } };
    case "answer":
      if (body.answer === "prepared") return { kind: "none" };
      return {
        kind: "participant",
        event: {
          type: "decision",
          txnId: body.txnId,
          outcome: body.answer,
          source: from === preparedCoordinator ? "coordinator" : "peer",
          by: from,
        },
      };
    case "lease":
    case "vote":
    case "ack":
      return { kind: "none" };
  }
}
