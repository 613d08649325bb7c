import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import {
  type DecidedTxn,
  type DecisionProof,
  decisionStatement,
} from "../../core/corridor/decision-signature.js";
import type { Outcome } from "../../core/corridor/participant.js";

/**
 * The cryptography of signed decisions (core/corridor/decision-signature.ts): a coordinator run's key
 * pair, its signature of a decision, and a participant's check of one. Ed25519 from node:crypto.
 */

/** A coordinator run's key pair: the private key never leaves the run; the public one goes with every PREPARE. */
export interface DecisionKeyPair {
  readonly privateKey: KeyObject;
  /** base64url of the 32-byte public key (JWK `x`): what a PREPARE's `decisionKey` carries. */
  readonly publicKey: string;
}

/** An Ed25519 private key from its 32-byte seed: PKCS#8 DER is a fixed 16-byte prefix and the seed. */
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/**
 * A new key pair: random in production; from a seed where a run must replay exactly (the
 * deterministic simulator draws the seed from its seeded source).
 */
export function newDecisionKeyPair(seed?: Uint8Array): DecisionKeyPair {
  const privateKey =
    seed === undefined
      ? generateKeyPairSync("ed25519").privateKey
      : createPrivateKey({
          key: Buffer.concat([PKCS8_ED25519_PREFIX, Buffer.from(seed)]),
          format: "der",
          type: "pkcs8",
        });
  const jwk = createPublicKey(privateKey).export({ format: "jwk" });
  return { privateKey, publicKey: String(jwk.x) };
}

/** The Ed25519 signature (base64) of a decision. */
export function signDecision(keys: DecisionKeyPair, txn: DecidedTxn, outcome: Outcome): string {
  return sign(null, Buffer.from(decisionStatement(txn, outcome), "utf8"), keys.privateKey).toString("base64");
}

/** At most this many public keys parsed and kept (a participant checks decisions of one transaction at a time). */
const MAX_KEYS_KEPT = 16;
const parsedKeys = new Map<string, KeyObject | null>();

function publicKeyOf(encoded: string): KeyObject | null {
  const known = parsedKeys.get(encoded);
  if (known !== undefined) return known;
  let key: KeyObject | null;
  try {
    key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: encoded }, format: "jwk" });
  } catch {
    key = null;
  }
  if (parsedKeys.size >= MAX_KEYS_KEPT) parsedKeys.delete(parsedKeys.keys().next().value as string);
  parsedKeys.set(encoded, key);
  return key;
}

/**
 * Does `signature` prove that the transaction's coordinator decided `outcome`? Checked with the decision
 * key its PREPARE carried (`decisionKey`; null: prepared before decisions were signed, nothing to check with).
 */
export function checkDecision(
  txn: DecidedTxn,
  decisionKey: string | null,
  outcome: Outcome,
  signature: string | null,
): DecisionProof {
  if (signature === null || decisionKey === null) return "absent";
  const key = publicKeyOf(decisionKey);
  if (key === null) return "invalid";
  try {
    const ok = verify(
      null,
      Buffer.from(decisionStatement(txn, outcome), "utf8"),
      key,
      Buffer.from(signature, "base64"),
    );
    return ok ? "valid" : "invalid";
  } catch {
    return "invalid";
  }
}
