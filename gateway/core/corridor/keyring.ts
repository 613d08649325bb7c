import { canonicalJson } from "../canonical-json.js";
import {
  type SignedSubject,
  shortFingerprint,
  signedStatement,
  type TrustedKey,
  type TrustState,
  type WireSignature,
} from "./plan-signature.js";

/**
 * The corridor's keyring (issue 20, item 3: trusted keys "rotated by a committed corridor change"): the
 * public keys that may sign plans and schedules, and the keys revoked, as one versioned document that
 * travels the same lease and two-phase commit as a plan, so that every gateway of the corridor trusts
 * the same keys from the same commit on, or none changes.
 *
 * Its rules, because a change of who may change the corridor must not be a way to take it over:
 * - **Only keys already trusted can change it.** A keyring change must carry signatures of `threshold`
 *   distinct keys that the gateway trusts now (its keys directory and the keyring in force), unrevoked.
 *   A gateway that trusts no key yet refuses every keyring: the first keys are put on each gateway by
 *   hand, as its broker credentials are (trust on first use would hand the corridor to whoever pushes
 *   first, a stolen gateway credential included).
 * - **Never rolled back.** A version older than the one in force is refused, so an old keyring that
 *   still trusted a key revoked since cannot be replayed; a different content under the version in force
 *   is refused too. The same content again is taken (it changes nothing): that is how a gateway that
 *   missed a keyring (replaced, restored from an old backup) is brought up to date, since it checks the
 *   signatures against the keys it trusts itself.
 * - **No lock-out.** A keyring that would leave fewer usable keys than its own threshold is refused:
 *   nobody could change the keys again without going to every cabinet.
 * - **Revocation only adds.** The trust of a gateway is its directory's keys and the keyring's, less
 *   every key revoked by either: a keyring cannot un-revoke what an administrator revoked on a gateway.
 *
 * Pure: what is trusted, and the verdict on a proposed keyring. Parsing the PEM keys and the Ed25519
 * verification are the shell's (protocol/keyring.ts, shell/corridor/plan-trust.ts), handed in.
 */

/** Why a gateway that trusts no key takes no keyring (no trust on first use). */
export const NO_TRUST_NO_KEYRING =
  "this gateway trusts no signing key yet, so it takes no keyring: the first trusted keys are copied onto each gateway by hand (its keys directory, /etc/greenwave/keys), and a keyring change must be signed by keys it already trusts";

/** The store and record key of the keyring: no plan or schedule id can have it (ids have no ":"). */
export const KEYRING_KEY = "keyring:corridor";
/** The id a keyring travels under in a PREPARE and is signed under. */
export const KEYRING_ID = "keyring";
/** More signers than a corridor has people who may change it is a mistake. */
export const MAX_KEYRING_THRESHOLD = 16;
export const MAX_KEYRING_KEYS = 64;
export const MAX_KEYRING_REVOCATIONS = 256;

export function isKeyringKey(planId: string): boolean {
  return planId === KEYRING_KEY;
}

/** A key the keyring trusts: its name, fingerprint (sha256 of its SPKI DER, hex) and public key (SPKI PEM). */
export interface KeyringKey {
  readonly name: string;
  readonly fingerprint: string;
  readonly publicKey: string;
}

export interface KeyringRevocation {
  readonly fingerprint: string;
  readonly name: string;
}

/** A keyring as a gateway compiled it (protocol/keyring.ts): what it stores and trusts. */
export interface CompiledKeyring {
  readonly kind: "keyring";
  readonly corridor: string;
  readonly version: number;
  /** How many distinct trusted keys must sign the next keyring change. */
  readonly threshold: number;
  readonly keys: readonly KeyringKey[];
  readonly revoked: readonly KeyringRevocation[];
  /** sha256 of `keyringContent(…)`, hex: with the version, the keyring's identity. */
  readonly digest: string;
}

/** What a keyring's digest covers: every field but the PEM text (its fingerprint stands for it), in a fixed order. */
export function keyringContent(keyring: Omit<CompiledKeyring, "digest" | "kind">): string {
  const byFingerprint = <T extends { fingerprint: string }>(list: readonly T[]) =>
    [...list].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : 0));
  return canonicalJson({
    kind: "keyring",
    corridor: keyring.corridor,
    version: keyring.version,
    threshold: keyring.threshold,
    keys: byFingerprint(keyring.keys).map((k) => ({ name: k.name, fingerprint: k.fingerprint })),
    revoked: byFingerprint(keyring.revoked).map((r) => ({ fingerprint: r.fingerprint, name: r.name })),
  });
}

/** What a keyring's signers sign: the signed-change statement (plan-signature.ts) with kind keyring. */
export function keyringSubject(keyring: CompiledKeyring): SignedSubject {
  return {
    corridor: keyring.corridor,
    kind: "keyring",
    id: KEYRING_ID,
    version: keyring.version,
    digest: keyring.digest,
  };
}

/** A gateway's keys directory as read: absent (none configured), unreadable, or its keys and revocations. */
export type DirectoryTrust =
  | { readonly kind: "none" }
  | { readonly kind: "unreadable"; readonly dir: string; readonly reason: string }
  | {
      readonly kind: "read";
      readonly dir: string;
      readonly keys: readonly { readonly name: string; readonly fingerprint: string }[];
      readonly revocations: readonly { readonly fingerprint: string; readonly name?: string }[];
    };

/**
 * A gateway's trust: the keys of its directory and of the keyring in force, less every key either
 * revoked. Off only when neither holds a key or a revocation; unreadable whenever the directory is (an
 * administrator must look: the keyring does not stand in for a directory that cannot be read).
 */
export function mergeTrust(directory: DirectoryTrust, keyring: CompiledKeyring | null): TrustState {
  if (directory.kind === "unreadable") return directory;
  const dirKeys = directory.kind === "read" ? directory.keys : [];
  const dirRevocations = directory.kind === "read" ? directory.revocations : [];
  if (dirKeys.length === 0 && dirRevocations.length === 0 && keyring === null) return { kind: "off" };
  const revoked = new Set([
    ...dirRevocations.map((r) => r.fingerprint),
    ...(keyring?.revoked ?? []).map((r) => r.fingerprint),
  ]);
  const keys: TrustedKey[] = [];
  const seen = new Set<string>();
  for (const [source, list] of [
    ["directory", dirKeys],
    ["keyring", keyring?.keys ?? []],
  ] as const)
    for (const k of list) {
      if (seen.has(k.fingerprint)) continue;
      seen.add(k.fingerprint);
      keys.push({ name: k.name, fingerprint: k.fingerprint, revoked: revoked.has(k.fingerprint), source });
    }
  // A key revoked but listed nowhere is still named, so that what it signed is refused as revoked.
  for (const [source, list] of [
    ["directory", dirRevocations],
    ["keyring", keyring?.revoked ?? []],
  ] as const)
    for (const r of list) {
      if (seen.has(r.fingerprint)) continue;
      seen.add(r.fingerprint);
      keys.push({ name: r.name ?? "?", fingerprint: r.fingerprint, revoked: true, source });
    }
  return {
    kind: "keys",
    dir: directory.kind === "read" ? directory.dir : "the corridor's keyring",
    keys,
    threshold: keyring?.threshold ?? 1,
    keyring: keyring ? { version: keyring.version, digest: keyring.digest } : null,
  };
}

/** The keys usable to sign once `proposed` is in force here: the directory's and its own, unrevoked. */
export function usableKeysAfter(directory: DirectoryTrust, proposed: CompiledKeyring): number {
  const after = mergeTrust(directory, proposed);
  return after.kind === "keys" ? after.keys.filter((k) => !k.revoked).length : 0;
}

/**
 * Why this gateway cannot take `proposed` as its keyring, or null when it can. `trust`: its trust now;
 * `usableAfter`: its usable keys once `proposed` is in force (`usableKeysAfter`); `known`: a keyring
 * content it already holds under the proposed version (received with an earlier PREPARE), if any;
 * `verify` checks a signature with a trusted key (by fingerprint).
 */
export function keyringRefusal(
  trust: TrustState,
  proposed: CompiledKeyring,
  usableAfter: number,
  known: { readonly digest: string } | null,
  signatures: readonly WireSignature[],
  verify: (fingerprint: string, statement: string, value: string) => boolean,
): string | null {
  const what = `keyring version ${proposed.version}`;
  if (trust.kind === "off") return NO_TRUST_NO_KEYRING;
  if (trust.kind === "unreadable")
    return `this gateway cannot read its trusted keys (${trust.dir}: ${trust.reason}), so it takes no keyring: fix the directory on this gateway`;
  const inForce = trust.keyring ?? null;
  if (inForce && proposed.version < inForce.version)
    return `${what} is older than the keyring version ${inForce.version} in force here: a keyring is never rolled back (it could trust a key revoked since); raise the version above ${inForce.version}`;
  if (inForce && proposed.version === inForce.version)
    return proposed.digest === inForce.digest
      ? null // the keyring in force, again: it changes nothing here
      : `another keyring is in force here under version ${proposed.version} (digest ${inForce.digest.slice(0, 12)}…, this one ${proposed.digest.slice(0, 12)}…): raise the version`;
  if (known && known.digest !== proposed.digest)
    return `this gateway already received another keyring under version ${proposed.version} (digest ${known.digest.slice(0, 12)}…): raise the version`;
  if (usableAfter < proposed.threshold)
    return `${what} would leave ${usableAfter} usable signing key${usableAfter === 1 ? "" : "s"} here for a threshold of ${proposed.threshold}: nobody could change the keys again; keep at least ${proposed.threshold} keys unrevoked`;
  const statement = signedStatement(keyringSubject(proposed));
  const counted = new Set<string>();
  const refused: string[] = [];
  for (const signature of signatures) {
    const by = `${signature.signer} (key ${shortFingerprint(signature.key)})`;
    const key = trust.keys.find((k) => k.fingerprint === signature.key);
    if (!key) refused.push(`${by}: not trusted here`);
    else if (key.revoked) refused.push(`${by}: revoked here`);
    else if (counted.has(key.fingerprint)) refused.push(`${by}: signed twice, counted once`);
    else if (!verify(key.fingerprint, statement, signature.value))
      refused.push(`${by}: does not verify for this keyring`);
    else counted.add(key.fingerprint);
  }
  const threshold = trust.threshold ?? 1;
  if (counted.size >= threshold) return null;
  // The first few refusals say enough; sixteen would not fit a vote.
  const shown = refused.length > 3 ? [...refused.slice(0, 3), `${refused.length - 3} more`] : refused;
  return `${what} needs the signatures of ${threshold} distinct key${threshold === 1 ? "" : "s"} trusted here and has ${counted.size}${shown.length > 0 ? ` (${shown.join("; ")})` : ""}: sign it with trusted keys (greenwave keys sign KEYRING --key KEY)`;
}
