import { z } from "zod";
import { identifier, RESERVED_IDS } from "../config/schema.js";
import { PROTOCOL_VERSION, TOPIC_ROOT } from "./topics.js";
import { MAX_KEYRING_THRESHOLD } from "../core/corridor/keyring.js";

/**
 * The corridor protocol on the wire (docs/protocol.md): lease requests and replies, PREPARE, votes,
 * decisions, acknowledgements, inquiries and their answers. Every message goes to its addressee's
 * inbox on a topic whose last level names the sender, so that the broker's ACL vouches for the
 * sender: `greenwave/v1/<corridor>/<to>/inbox/<from>`. A party is an intersection id, or `@name`
 * for a coordinator that is not a gateway (an operator's `plan push`).
 */

export const MAX_CORRIDOR_MESSAGE_BYTES = 128 * 1024;

/** An intersection id (the config's rules, reserved names included) or `@name`. */
const party = z
  .string()
  .regex(/^@?[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, "must be an intersection id or @name")
  .refine((name) => !RESERVED_IDS.has(name), "is a reserved name");
const txnId = z.string().min(1).max(100);
const token = z.number().int().nonnegative();
const outcome = z.enum(["committed", "aborted"]);

/**
 * A signature of the change's content (core/corridor/plan-signature.ts): who signed, the key's
 * fingerprint, the Ed25519 signature in base64. What it signs is not sent: each participant rebuilds
 * the statement from its own corridor and its own digest of the content, so nothing here is trusted.
 */
export const wireSignatureSchema = z.strictObject({
  signer: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "must be a key name"),
  key: z.string().regex(/^[0-9a-f]{64}$/, "must be a key fingerprint (sha256, lower-case hex)"),
  value: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, "must be an Ed25519 signature in base64"),
});

/** A coordinator's signature of its decision (core/corridor/decision-signature.ts): Ed25519, base64. */
const decisionSignature = z.string().regex(/^[A-Za-z0-9+/]{86}==$/, "must be an Ed25519 signature in base64");

export const leaseReplySchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("granted"), requestId: z.string().max(200), token, ttlMs: z.number() }),
  z.object({ type: z.literal("renewed"), token, ttlMs: z.number() }),
  z.object({
    type: z.literal("denied"),
    requestId: z.string().max(200),
    holder: z.string().max(100),
    retryAfterMs: z.number(),
  }),
  z.object({ type: z.literal("lost"), token, reason: z.string().max(500) }),
  z.object({ type: z.literal("released"), token }),
  z.object({ type: z.literal("unavailable"), reason: z.string().max(500) }),
]);

/** A no vote's reason on the wire: longer, the vote would be dropped as invalid and its reason lost. */
export const MAX_VOTE_REASON_CHARS = 1000;

/** A reason cut to what a vote carries, saying that it was cut. */
export function voteReason(reason: string | null): string | null {
  if (reason === null || reason.length <= MAX_VOTE_REASON_CHARS) return reason;
  const tail = "… (cut: the gateway's audit trail has it whole)";
  return `${reason.slice(0, MAX_VOTE_REASON_CHARS - tail.length)}${tail}`;
}

export const corridorBodySchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("acquire"),
    requestId: z.string().min(1).max(200),
    ttlMs: z.number().int().positive(),
  }),
  z.strictObject({ type: z.literal("renew"), token, ttlMs: z.number().int().positive() }),
  z.strictObject({ type: z.literal("release"), token }),
  z.strictObject({ type: z.literal("lease"), reply: leaseReplySchema }),
  z.strictObject({
    type: z.literal("prepare"),
    txnId,
    token,
    /** Intersection ids: each becomes a topic level and a key, so they follow the config's rules. */
    participants: z.array(identifier).min(1).max(256),
    /**
     * `digest`: the plan file's content digest (config/plan-digest.ts), which the participant checks
     * against the content; optional so that a PREPARE from an older coordinator is still read.
     */
    plan: z.strictObject({
      id: identifier,
      version: z.number().int(),
      /**
       * A schedule (the plan file is then a schedule bundle, config/schedule-bundle.ts), a cancel of
       * another transaction's waiting change (`cancels`; core/corridor/plan-cancel.ts), or the corridor's
       * keyring (the plan file is then a keyring file; core/corridor/keyring.ts); absent: a plan.
       */
      kind: z.enum(["schedule", "cancel", "keyring"]).optional(),
      /** A manual plan's end over a running schedule (PlanRef.until); absent: the schedule's next change. */
      until: z.union([z.number().int(), z.literal("hold")]).optional(),
      digest: z
        .string()
        .regex(/^[0-9a-f]{64}$/, "must be a sha256 digest in lower-case hex")
        .optional(),
    }),
    /** The plan file's content (as JSON: YAML costs a small gateway 10+ ms to parse); each participant checks its own part. */
    planFile: z.unknown(),
    /** For a cancel (`plan.kind: "cancel"`): the transaction whose waiting change it cancels. */
    cancels: txnId.optional(),
    activationWallMs: z.number().int(),
    /**
     * The content's signature (`greenwave plan sign`); absent: unsigned. A gateway with trusted keys
     * votes no without one. An older gateway reads a PREPARE strictly and drops one that carries it.
     */
    signature: wireSignatureSchema.optional(),
    /**
     * A keyring change's signatures (`plan.kind: "keyring"`, core/corridor/keyring.ts): as many as its
     * threshold asks, each by another trusted key. Absent elsewhere.
     */
    signatures: z.array(wireSignatureSchema).max(MAX_KEYRING_THRESHOLD).optional(),
    /**
     * The coordinator run's public key for this transaction's decision (Ed25519, base64url of its 32
     * bytes): a participant takes the decision from anyone else only with a signature it verifies.
     * Absent: a coordinator of an older release (only its own word then ends a participant's doubt).
     */
    decisionKey: z
      .string()
      .regex(/^[A-Za-z0-9_-]{43}$/, "must be an Ed25519 public key in base64url")
      .optional(),
  }),
  z.strictObject({
    type: z.literal("vote"),
    txnId,
    yes: z.boolean(),
    reason: z.string().max(MAX_VOTE_REASON_CHARS).nullable(),
  }),
  z.strictObject({
    type: z.literal("decision"),
    txnId,
    outcome,
    token,
    /** The coordinator's signature of the decision; absent only from a coordinator of an older release. */
    signature: decisionSignature.optional(),
  }),
  z.strictObject({ type: z.literal("ack"), txnId, outcome }),
  z.strictObject({ type: z.literal("inquiry"), txnId }),
  z.strictObject({
    type: z.literal("answer"),
    txnId,
    answer: z.enum(["committed", "aborted", "prepared"]),
    /** The coordinator's signature of the outcome, when the answering party holds one (forwarded intact). */
    signature: decisionSignature.optional(),
  }),
]);

export const corridorEnvelopeSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  from: party,
  to: party,
  /** The sender's wall clock when it sent: the receiver's first clock-health check. */
  sentAtWallMs: z.number().int(),
  body: corridorBodySchema,
});

export type CorridorBody = z.infer<typeof corridorBodySchema>;
export type CorridorEnvelope = z.infer<typeof corridorEnvelopeSchema>;

export function inboxTopic(corridor: string, to: string, from: string): string {
  return `${TOPIC_ROOT}/${corridor}/${to}/inbox/${from}`;
}

export function inboxFilter(corridor: string, me: string): string {
  return `${TOPIC_ROOT}/${corridor}/${me}/inbox/+`;
}

/** Where a coordinator keeps its decision, retained, for participants that ask after it is gone. */
export function decisionTopic(corridor: string, coordinator: string, txn: string): string {
  return `${TOPIC_ROOT}/${corridor}/${coordinator}/decisions/${txn}`;
}

export function decisionFilter(corridor: string): string {
  return `${TOPIC_ROOT}/${corridor}/+/decisions/+`;
}

export const decisionRecordSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  txnId,
  coordinator: party,
  outcome,
  participants: z.array(identifier).max(256),
  activationWallMs: z.number().int(),
  /** The coordinator's signature of the outcome (decision-signature.ts). */
  signature: decisionSignature.optional(),
});
export type DecisionRecord = z.infer<typeof decisionRecordSchema>;

export type CorridorParse =
  | { readonly ok: true; readonly envelope: CorridorEnvelope }
  | { readonly ok: false; readonly reason: string };

/**
 * Reads a message from `greenwave/v1/<corridor>/<to>/inbox/<from>`: valid JSON of the schema, and the
 * `from`/`to` it claims are the topic's (which the broker's ACL vouches for).
 */
export function parseCorridorMessage(topic: string, payload: Uint8Array): CorridorParse {
  if (payload.byteLength > MAX_CORRIDOR_MESSAGE_BYTES) return { ok: false, reason: "too-large" };
  const parts = topic.split("/");
  const to = parts[3];
  const from = parts[5];
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload).toString("utf8"));
  } catch {
    return { ok: false, reason: "not-json" };
  }
  const parsed = corridorEnvelopeSchema.safeParse(value);
  if (!parsed.success) return { ok: false, reason: "invalid" };
  if (parsed.data.from !== from || parsed.data.to !== to) return { ok: false, reason: "forged-sender" };
  return { ok: true, envelope: parsed.data };
}
