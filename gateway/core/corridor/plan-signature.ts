import { canonicalJson } from "../canonical-json.js";
import type { PrepareVerdict } from "./participant.js";
import { shortDigest } from "./plan-identity.js";

/**
 * Signed plans (issue 20, item 3): whoever may change a corridor signs a plan (or a schedule) with an
 * Ed25519 key, and every gateway that holds trusted public keys votes no on a PREPARE whose content is
 * not signed by one of them, unrevoked. This module is the pure part — what is signed, and the verdict
 * — so that the participant shell decides the same way in the gateway and in the simulator; the
 * cryptography itself (node:crypto) is the shell's (gateway/shell/corridor/plan-trust.ts), handed in as
 * `verify`.
 *
 * What is signed is a statement, not the file: the corridor, what it is (a plan or a schedule), its id,
 * its version and its content digest (config/plan-digest.ts, the schedule bundle's digest for a
 * schedule). The digest binds the content; the id, version and corridor bind where it may be used, so a
 * signature cannot be moved to another plan, another version or another corridor.
 */

/** What a signature covers. */
export interface SignedSubject {
  readonly corridor: string;
  readonly kind: "plan" | "schedule" | "keyring";
  readonly id: string;
  readonly version: number;
  /** sha256 of the content, lower-case hex (a plan's digest, or a schedule bundle's). */
  readonly digest: string;
}

/** A signature as it travels with a PREPARE and a plan-push command. */
export interface WireSignature {
  /** Who signed, as the signer named their key (informational: the gateway names keys by its own files). */
  readonly signer: string;
  /** The key's fingerprint: sha256 of its public key (SPKI DER), lower-case hex. */
  readonly key: string;
  /** The Ed25519 signature of `signedStatement(subject)`, base64. */
  readonly value: string;
}

/** Changing it voids every signature: a domain separator, so a greenwave signature means nothing elsewhere. */
export const SIGNATURE_CONTEXT = "greenwave/v1 signed corridor change";

/** The bytes an Ed25519 key signs for a subject: canonical JSON (RFC 8785) of the context and the subject. */
export function signedStatement(subject: SignedSubject): string {
  return canonicalJson({
    context: SIGNATURE_CONTEXT,
    corridor: subject.corridor,
    kind: subject.kind,
    id: subject.id,
    version: subject.version,
    digest: subject.digest,
  });
}

/** A trusted key as the gateway's keys directory names it. */
export interface TrustedKey {
  readonly name: string;
  readonly fingerprint: string;
  readonly revoked: boolean;
  /** Where the trust comes from: the gateway's keys directory, or the corridor's keyring in force (keyring.ts). */
  readonly source?: "directory" | "keyring";
}

/**
 * The trust a gateway has, as read now: `off` (no trusted keys configured: anything goes, loudly),
 * `unreadable` (configured, but the directory cannot be read: nothing is trusted), or the keys.
 */
export type TrustState =
  | { readonly kind: "off" }
  | { readonly kind: "unreadable"; readonly dir: string; readonly reason: string }
  | {
      readonly kind: "keys";
      readonly dir: string;
      readonly keys: readonly TrustedKey[];
      /** Distinct trusted keys a keyring change must be signed by (keyring.ts); absent: 1. */
      readonly threshold?: number;
      /** The corridor's keyring in force here (keyring.ts); absent or null: none committed. */
      readonly keyring?: { readonly version: number; readonly digest: string } | null;
    };

/** How many hex characters of a key's fingerprint the messages show. */
export function shortFingerprint(fingerprint: string): string {
  return fingerprint.slice(0, 16);
}

function describe(subject: SignedSubject): string {
  return `${subject.kind} ${subject.id} version ${subject.version}`;
}

/**
 * Is this change's content signed by a key this gateway trusts? `subject` is what this gateway itself
 * found (its own digest of the content, its own corridor); `verify` checks the signature with a trusted
 * key (by fingerprint). Each no says which of the cases it is and what to do about it.
 */
export function checkSignature(
  trust: TrustState,
  subject: SignedSubject,
  signature: WireSignature | null,
  verify: (fingerprint: string, statement: string, value: string) => boolean,
): PrepareVerdict {
  if (trust.kind === "off") return { ok: true };
  const what = describe(subject);
  if (trust.kind === "unreadable")
    return {
      ok: false,
      reason: `this gateway cannot read its trusted keys (${trust.dir}: ${trust.reason}), so it takes no ${subject.kind}: fix the directory on this gateway`,
    };
  if (signature === null)
    return {
      ok: false,
      reason: `${what} is not signed, and this gateway takes only changes signed by a trusted key (${trust.dir}): sign it (greenwave ${subject.kind} sign FILE --key KEY) and push it with its .sig file`,
    };
  const key = trust.keys.find((k) => k.fingerprint === signature.key);
  const by = `${signature.signer} (key ${shortFingerprint(signature.key)})`;
  if (!key)
    return {
      ok: false,
      reason: `${what} is signed by ${by}, a key this gateway does not trust: sign it with a trusted key, or add that public key to ${trust.dir} on every gateway`,
    };
  if (key.revoked)
    return {
      ok: false,
      reason: `${what} is signed by ${by}, which is revoked here (${key.name}): sign it again with a current key`,
    };
  if (!verify(key.fingerprint, signedStatement(subject), signature.value))
    return {
      ok: false,
      reason: `the signature by ${by} does not verify for ${what} (digest ${shortDigest(subject.digest)}…) on corridor ${subject.corridor}: it was made for other content, another version or another corridor; sign this file again`,
    };
  return { ok: true };
}
